import { AppConfig, ConfigValidationError, validateConfig } from './app-config';

describe(AppConfig.name, () => {
  it('applies defaults for an empty environment', () => {
    const config = validateConfig({});
    expect(config.PORT).toBe(3000);
    expect(config.REDIS_URL).toBe('redis://127.0.0.1:6379');
    expect(config.USAGE_TIMEZONE).toBe('UTC');
    expect(config.MONGODB_URI).toBeUndefined();
    expect(config.MONGODB_MEMORY_SERVER).toBe(true);
  });

  it('converts numbers and booleans from strings', () => {
    const config = validateConfig({ PORT: '8080', MONGODB_MEMORY_SERVER: 'false', DISPLAY_CURRENCY_RATE: '18.25' });
    expect(config.PORT).toBe(8080);
    expect(config.MONGODB_MEMORY_SERVER).toBe(false);
    expect(config.DISPLAY_CURRENCY_RATE).toBe(18.25);
  });

  it.each([
    [{ PORT: 'eighty' }, 'PORT'],
    [{ PORT: '70000' }, 'PORT'],
    [{ MONGODB_URI: 'postgres://x' }, 'MONGODB_URI'],
    [{ REDIS_URL: 'http://x' }, 'REDIS_URL'],
    [{ USAGE_TIMEZONE: 'Mars/Olympus' }, 'USAGE_TIMEZONE'],
    [{ AI_PROVIDER: 'skynet' }, 'AI_PROVIDER'],
    [{ MONGODB_MEMORY_SERVER: 'maybe' }, 'MONGODB_MEMORY_SERVER'],
    [{ ADMIN_API_KEY: 'short' }, 'ADMIN_API_KEY'],
    [{ EMBED_CHUNK_TOKENS: '100', EMBED_CHUNK_OVERLAP: '100' }, 'EMBED_CHUNK_OVERLAP must be less than EMBED_CHUNK_TOKENS'],
    [{ VECTOR_SEARCH: 'faiss' }, 'VECTOR_SEARCH'],
  ])('rejects %j naming %s', (raw, name) => {
    expect(() => validateConfig(raw)).toThrow(ConfigValidationError);
    expect(() => validateConfig(raw)).toThrow(name);
  });

  it('ignores variables it does not know', () => {
    expect(() => validateConfig({ HOME: '/root', SOMETHING_ELSE: 'x' })).not.toThrow();
  });
});
