import { FactoryProvider, Logger } from '@nestjs/common';
import { AiProviderName, AppConfig, ConfigValidationError } from '../config/app-config';
import { AI_PROVIDER, AiProvider } from './ai-provider.interface';
import { OpenAiCompatibleProvider, PLACEHOLDER_API_KEY } from './openai-compatible.provider';
import { SimulatedProvider } from './simulated.provider';
import { TokenizerService } from './tokenizer.service';

export const OPENROUTER_BASE_URL = 'https://openrouter.ai/api/v1';
export const OPENAI_BASE_URL = 'https://api.openai.com/v1';

export type ProviderSettings =
  | { kind: 'simulated'; reason: string }
  | { kind: Exclude<AiProviderName, 'simulated'>; baseUrl: string; apiKey: string; reason: string };

type ProviderConfig = Pick<AppConfig, 'AI_PROVIDER' | 'AI_BASE_URL' | 'OPENROUTER_API_KEY' | 'AI_API_KEY'>;

const isOpenRouterUrl = (url: string) => {
  try {
    const host = new URL(url).hostname;
    return host === 'openrouter.ai' || host.endsWith('.openrouter.ai');
  } catch {
    return false;
  }
};

/**
 * Which provider the config asks for. The simulated provider is chosen only when
 * nothing is configured or when AI_PROVIDER=simulated; an incomplete explicit choice
 * is a boot error, never a silent fallback to simulated.
 */
export function resolveProviderSettings(config: ProviderConfig): ProviderSettings {
  const { AI_PROVIDER: explicit, AI_BASE_URL: baseUrl, OPENROUTER_API_KEY: openRouterKey, AI_API_KEY: apiKey } = config;
  const missing = (message: string): never => {
    throw new ConfigValidationError(`Invalid configuration:\n  - ${message}`);
  };

  switch (explicit) {
    case 'simulated':
      return { kind: 'simulated', reason: 'AI_PROVIDER=simulated' };
    case 'openrouter':
      return {
        kind: 'openrouter',
        baseUrl: baseUrl ?? OPENROUTER_BASE_URL,
        apiKey: openRouterKey ?? apiKey ?? missing('AI_PROVIDER=openrouter needs OPENROUTER_API_KEY'),
        reason: 'AI_PROVIDER=openrouter',
      };
    case 'openai':
      return {
        kind: 'openai',
        baseUrl: baseUrl ?? OPENAI_BASE_URL,
        apiKey: apiKey ?? missing('AI_PROVIDER=openai needs AI_API_KEY'),
        reason: 'AI_PROVIDER=openai',
      };
    case 'compatible':
      return {
        kind: 'compatible',
        baseUrl: baseUrl ?? missing('AI_PROVIDER=compatible needs AI_BASE_URL'),
        apiKey: apiKey ?? PLACEHOLDER_API_KEY,
        reason: 'AI_PROVIDER=compatible',
      };
  }

  if (baseUrl) {
    // The OpenRouter key is only ever sent to OpenRouter.
    if (isOpenRouterUrl(baseUrl) && (openRouterKey ?? apiKey)) {
      return { kind: 'openrouter', baseUrl, apiKey: (openRouterKey ?? apiKey)!, reason: 'AI_BASE_URL points at OpenRouter' };
    }
    return { kind: 'compatible', baseUrl, apiKey: apiKey ?? PLACEHOLDER_API_KEY, reason: 'AI_BASE_URL is set' };
  }
  if (openRouterKey) return { kind: 'openrouter', baseUrl: OPENROUTER_BASE_URL, apiKey: openRouterKey, reason: 'OPENROUTER_API_KEY is set' };
  if (apiKey) return { kind: 'openai', baseUrl: OPENAI_BASE_URL, apiKey, reason: 'AI_API_KEY is set' };
  return { kind: 'simulated', reason: 'no OPENROUTER_API_KEY, AI_API_KEY or AI_BASE_URL is set' };
}

export function createAiProvider(config: AppConfig, tokenizer: TokenizerService, logger = new Logger('AiProvider')): AiProvider {
  const settings = resolveProviderSettings(config);
  const models = `primary ${config.AI_PRIMARY_MODEL}, fallback ${config.AI_FALLBACK_MODEL || 'none'}, embeddings ${config.AI_EMBEDDING_MODEL}`;
  if (settings.kind === 'simulated') {
    logger.warn(
      `AI provider is SIMULATED (${settings.reason}): every answer is a deterministic placeholder and no real model is called. ` +
        'Set OPENROUTER_API_KEY, or AI_API_KEY, or AI_BASE_URL to use a real provider.',
    );
    return new SimulatedProvider(tokenizer);
  }
  logger.log(`AI provider: ${settings.kind} at ${settings.baseUrl} (${settings.reason}); ${models}; timeout ${config.AI_TIMEOUT_MS} ms; transport ${config.AI_HTTP_TRANSPORT}`);
  return new OpenAiCompatibleProvider({
    kind: settings.kind,
    baseUrl: settings.baseUrl,
    apiKey: settings.apiKey,
    timeoutMs: config.AI_TIMEOUT_MS,
    transport: config.AI_HTTP_TRANSPORT,
  });
}

export const aiProviderFactory: FactoryProvider<AiProvider> = {
  provide: AI_PROVIDER,
  inject: [AppConfig, TokenizerService],
  useFactory: (config: AppConfig, tokenizer: TokenizerService) => createAiProvider(config, tokenizer),
};
