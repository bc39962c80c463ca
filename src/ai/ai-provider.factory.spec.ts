import { Logger } from '@nestjs/common';
import { ConfigValidationError, validateConfig } from '../config/app-config';
import { createAiProvider, OPENAI_BASE_URL, OPENROUTER_BASE_URL, resolveProviderSettings } from './ai-provider.factory';
import { OpenAiCompatibleProvider, PLACEHOLDER_API_KEY } from './openai-compatible.provider';
import { SimulatedProvider } from './simulated.provider';
import { TokenizerService } from './tokenizer.service';

describe('resolveProviderSettings', () => {
  const settingsFor = (raw: Record<string, string>) => resolveProviderSettings(validateConfig(raw));

  it('chooses simulated only when nothing is configured', () => {
    expect(settingsFor({})).toMatchObject({ kind: 'simulated', reason: expect.stringContaining('no OPENROUTER_API_KEY') });
  });

  it('chooses simulated when asked explicitly, even with keys present', () => {
    expect(settingsFor({ AI_PROVIDER: 'simulated', OPENROUTER_API_KEY: 'sk-or-x' })).toMatchObject({ kind: 'simulated' });
  });

  it.each([
    [{ OPENROUTER_API_KEY: 'sk-or-1' }, { kind: 'openrouter', baseUrl: OPENROUTER_BASE_URL, apiKey: 'sk-or-1' }],
    [{ AI_API_KEY: 'sk-1' }, { kind: 'openai', baseUrl: OPENAI_BASE_URL, apiKey: 'sk-1' }],
    [{ AI_BASE_URL: 'http://127.0.0.1:11434/v1' }, { kind: 'compatible', baseUrl: 'http://127.0.0.1:11434/v1', apiKey: PLACEHOLDER_API_KEY }],
    [
      { AI_BASE_URL: 'http://vllm.internal:8000/v1', AI_API_KEY: 'k' },
      { kind: 'compatible', baseUrl: 'http://vllm.internal:8000/v1', apiKey: 'k' },
    ],
    [
      { AI_BASE_URL: 'https://openrouter.ai/api/v1', OPENROUTER_API_KEY: 'sk-or-2' },
      { kind: 'openrouter', baseUrl: 'https://openrouter.ai/api/v1', apiKey: 'sk-or-2' },
    ],
    [{ OPENROUTER_API_KEY: 'sk-or-3', AI_API_KEY: 'sk-3' }, { kind: 'openrouter', apiKey: 'sk-or-3' }],
    [{ AI_PROVIDER: 'openrouter', AI_API_KEY: 'sk-4' }, { kind: 'openrouter', baseUrl: OPENROUTER_BASE_URL, apiKey: 'sk-4' }],
    [{ AI_PROVIDER: 'openai', AI_API_KEY: 'sk-5' }, { kind: 'openai', baseUrl: OPENAI_BASE_URL, apiKey: 'sk-5' }],
    [
      { AI_PROVIDER: 'compatible', AI_BASE_URL: 'http://localhost:1234/v1' },
      { kind: 'compatible', baseUrl: 'http://localhost:1234/v1', apiKey: PLACEHOLDER_API_KEY },
    ],
  ])('resolves %j to %j', (raw, expected) => {
    expect(settingsFor(raw)).toMatchObject(expected);
  });

  it('never sends the OpenRouter key to another host', () => {
    const settings = settingsFor({ AI_BASE_URL: 'http://127.0.0.1:8080/v1', OPENROUTER_API_KEY: 'sk-or-secret' });
    expect(settings).toMatchObject({ kind: 'compatible', apiKey: PLACEHOLDER_API_KEY });
  });

  it.each([
    [{ AI_PROVIDER: 'openrouter' }, 'AI_PROVIDER=openrouter needs OPENROUTER_API_KEY'],
    [{ AI_PROVIDER: 'openai', OPENROUTER_API_KEY: 'sk-or' }, 'AI_PROVIDER=openai needs AI_API_KEY'],
    [{ AI_PROVIDER: 'compatible', AI_API_KEY: 'k' }, 'AI_PROVIDER=compatible needs AI_BASE_URL'],
  ])('refuses an incomplete explicit choice %j instead of simulating', (raw, message) => {
    expect(() => settingsFor(raw)).toThrow(ConfigValidationError);
    expect(() => settingsFor(raw)).toThrow(message);
  });
});

describe('createAiProvider', () => {
  const tokenizer = new TokenizerService();
  afterAll(() => tokenizer.onModuleDestroy());
  const logger = () => {
    const instance = new Logger('test');
    return { instance, log: jest.spyOn(instance, 'log').mockImplementation(() => undefined), warn: jest.spyOn(instance, 'warn').mockImplementation(() => undefined) };
  };

  it('builds the simulated provider with a loud warning', () => {
    const { instance, warn, log } = logger();
    const provider = createAiProvider(validateConfig({}), tokenizer, instance);
    expect(provider).toBeInstanceOf(SimulatedProvider);
    expect(provider.name).toBe('simulated');
    expect(warn).toHaveBeenCalledWith(expect.stringContaining('AI provider is SIMULATED'));
    expect(log).not.toHaveBeenCalled();
  });

  it('builds the OpenAI-compatible provider and logs the choice without the key', () => {
    const { instance, warn, log } = logger();
    const provider = createAiProvider(validateConfig({ OPENROUTER_API_KEY: 'sk-or-very-secret' }), tokenizer, instance);
    expect(provider).toBeInstanceOf(OpenAiCompatibleProvider);
    expect(provider.name).toBe('openrouter');
    expect(warn).not.toHaveBeenCalled();
    expect(log).toHaveBeenCalledWith(expect.stringContaining(`openrouter at ${OPENROUTER_BASE_URL}`));
    expect(log.mock.calls[0][0]).toContain('primary openai/gpt-4o-mini, fallback openai/gpt-4o');
    expect(log.mock.calls[0][0]).not.toContain('sk-or-very-secret');
  });
});
