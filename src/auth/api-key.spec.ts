import { createHash } from 'node:crypto';
import { API_KEY_FORMAT, generateApiKey, hashApiKey, secretsEqual } from './api-key';

describe('api keys', () => {
  it('generates tl_<role>_<40 base62> keys with a short non-secret prefix and their SHA-256', () => {
    const { key, prefix, hash } = generateApiKey('service');
    expect(key).toMatch(/^tl_service_[A-Za-z0-9]{40}$/);
    expect(API_KEY_FORMAT.test(key)).toBe(true);
    expect(prefix).toBe(key.slice(0, 'tl_service_'.length + 6));
    expect(hash).toBe(createHash('sha256').update(key).digest('hex'));
    expect(hashApiKey(key)).toBe(hash);
  });

  it('never repeats a key', () => {
    const keys = new Set(Array.from({ length: 2000 }, () => generateApiKey('user').key));
    expect(keys.size).toBe(2000);
  });

  it('uses every base62 character', () => {
    const seen = new Set(Array.from({ length: 200 }, () => generateApiKey('user').key.slice(8)).join(''));
    expect(seen.size).toBe(62);
  });

  it('compares secrets of any length', () => {
    expect(secretsEqual('a-long-admin-key-0001', 'a-long-admin-key-0001')).toBe(true);
    expect(secretsEqual('a-long-admin-key-0001', 'a-long-admin-key-0002')).toBe(false);
    expect(secretsEqual('short', 'a-long-admin-key-0001')).toBe(false);
  });
});
