export type ChatRole = 'system' | 'user' | 'assistant';

export interface ChatMessage {
  role: ChatRole;
  content: string;
  /** Optional participant name; costs one extra token in the chat format. */
  name?: string;
}

export interface CompletionRequest {
  messages: ChatMessage[];
  maxTokens?: number;
  temperature?: number;
  responseFormat?: 'text' | 'json_object';
  /**
   * With responseFormat json_object: the expected shape, sent as a `json_schema` response
   * format to models known to accept it (json_object to the rest). A hint only: answers are
   * parsed leniently whatever the provider does with it.
   */
  jsonSchema?: { name: string; schema: Record<string, unknown> };
  /**
   * A valid sample of the answer the feature expects. Only the simulated provider
   * uses it, so a feature keeps working (with a well-formed answer) when no real
   * provider is configured. Real providers never see it.
   */
  simulatedAnswer?: string;
}

/** Token counts as the provider reported them. */
export interface ProviderUsage {
  promptTokens: number;
  completionTokens: number;
  totalTokens: number;
  /** Part of promptTokens served from the provider's prompt cache. */
  cachedTokens?: number;
  /** Part of promptTokens written to the provider's prompt cache (billed at the cache-write rate). */
  cacheWriteTokens?: number;
  /** Part of completionTokens spent on reasoning (OpenAI counts them inside completion_tokens). */
  reasoningTokens?: number;
  /** Cost the provider charged, in USD (OpenRouter `usage.cost`). */
  costUsd?: number;
}

export interface ProviderCompletion {
  text: string;
  /** The model as the provider reported it (e.g. a dated snapshot). */
  model: string;
  provider: string;
  usage: ProviderUsage | null;
  finishReason: string | null;
  latencyMs: number;
}

export type ProviderStreamEvent =
  | { type: 'delta'; text: string }
  | {
      type: 'done';
      model: string;
      provider: string;
      usage: ProviderUsage | null;
      finishReason: string | null;
      latencyMs: number;
    };

export interface ProviderEmbeddingUsage {
  promptTokens: number;
  totalTokens: number;
  costUsd?: number;
}

export interface ProviderEmbedding {
  vectors: number[][];
  model: string;
  provider: string;
  usage: ProviderEmbeddingUsage | null;
  latencyMs: number;
}

/**
 * One backend that speaks chat completions and embeddings. Implementations throw
 * AiProviderCallError (ai-errors.ts) for every failure so AiService can decide on
 * fallback without knowing the SDK.
 */
export interface AiProvider {
  readonly name: string;
  complete(model: string, request: CompletionRequest, signal?: AbortSignal): Promise<ProviderCompletion>;
  /** Text deltas, then exactly one `done` event carrying the usage (or null). */
  stream(model: string, request: CompletionRequest, signal?: AbortSignal): AsyncIterable<ProviderStreamEvent>;
  embed(model: string, inputs: string[], signal?: AbortSignal): Promise<ProviderEmbedding>;
}

/** Injection token for the provider chosen at boot. */
export const AI_PROVIDER = Symbol('AI_PROVIDER');
