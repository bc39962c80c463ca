import OpenAI, { APIConnectionError, APIConnectionTimeoutError, APIError, APIUserAbortError } from 'openai';
import type { ChatCompletionCreateParamsNonStreaming, ChatCompletionMessageParam } from 'openai/resources/chat/completions';
import { performance } from 'node:perf_hooks';
import { AiProviderCallError, PartialCompletion } from './ai-errors';
import { createNodeHttpFetch } from './node-http-fetch';
import { acceptsJsonSchema } from './structured-output';
import type {
  AiProvider,
  CompletionRequest,
  ProviderCompletion,
  ProviderEmbedding,
  ProviderStreamEvent,
  ProviderUsage,
} from './ai-provider.interface';

export type OpenAiCompatibleKind = 'openrouter' | 'openai' | 'compatible';

export interface OpenAiCompatibleSettings {
  kind: OpenAiCompatibleKind;
  baseUrl: string;
  apiKey: string;
  /** Whole-call deadline for complete/embed; idle deadline (to headers, then between chunks) for streams. */
  timeoutMs: number;
  /** `node` (default): node:http keep-alive under the SDK; `fetch`: Node's built-in fetch. */
  transport?: 'node' | 'fetch';
}

/** Servers such as Ollama or LM Studio ignore the key, but the SDK insists on one. */
export const PLACEHOLDER_API_KEY = 'not-needed';

type Json = Record<string, unknown>;
const isObject = (value: unknown): value is Json => typeof value === 'object' && value !== null;
const count = (value: unknown) => (typeof value === 'number' && Number.isFinite(value) && value >= 0 ? value : undefined);

/** OpenAI's usage object plus OpenRouter's extras (cost, cached and reasoning details). */
export function usageFromOpenAi(raw: unknown): ProviderUsage | null {
  if (!isObject(raw)) return null;
  const promptTokens = count(raw.prompt_tokens);
  const completionTokens = count(raw.completion_tokens);
  if (promptTokens === undefined || completionTokens === undefined) return null;
  const usage: ProviderUsage = {
    promptTokens,
    completionTokens,
    totalTokens: count(raw.total_tokens) ?? promptTokens + completionTokens,
  };
  const cached = isObject(raw.prompt_tokens_details) ? count(raw.prompt_tokens_details.cached_tokens) : undefined;
  // OpenRouter reports cache writes (Anthropic, Gemini) in prompt_tokens_details; LiteLLM-style proxies pass Anthropic's own field.
  const cacheWrite = (isObject(raw.prompt_tokens_details) ? count(raw.prompt_tokens_details.cache_write_tokens) : undefined) ?? count(raw.cache_creation_input_tokens);
  const reasoning = isObject(raw.completion_tokens_details) ? count(raw.completion_tokens_details.reasoning_tokens) : undefined;
  const cost = count(raw.cost);
  if (cached !== undefined) usage.cachedTokens = cached;
  if (cacheWrite !== undefined) usage.cacheWriteTokens = cacheWrite;
  if (reasoning !== undefined) usage.reasoningTokens = reasoning;
  if (cost !== undefined) usage.costUsd = cost;
  return usage;
}

/** Links the caller's signal with our own deadline, and remembers which one fired. */
class CallScope {
  readonly controller = new AbortController();
  timedOut = false;
  private timer: NodeJS.Timeout | undefined;
  private readonly onCallerAbort = () => this.controller.abort();

  constructor(
    private readonly timeoutMs: number,
    private readonly caller?: AbortSignal,
  ) {
    if (caller?.aborted) this.controller.abort();
    else caller?.addEventListener('abort', this.onCallerAbort, { once: true });
    this.arm();
  }

  get signal(): AbortSignal {
    return this.controller.signal;
  }

  get callerAborted(): boolean {
    return !this.timedOut && this.caller?.aborted === true;
  }

  arm(): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timedOut = true;
      this.controller.abort();
    }, this.timeoutMs);
  }

  dispose(): void {
    clearTimeout(this.timer);
    this.caller?.removeEventListener('abort', this.onCallerAbort);
  }
}

/** Error codes such as ECONNRESET are safe to show; messages may quote the provider. */
function errorCode(error: unknown): string | undefined {
  for (let current: unknown = error, depth = 0; isObject(current) && depth < 4; current = current.cause, depth++) {
    if (typeof current.code === 'string' && /^[A-Z][A-Z0-9_]+$/.test(current.code)) return current.code;
  }
  return undefined;
}

/**
 * One client for OpenRouter, OpenAI and any OpenAI-compatible server (vLLM, Ollama,
 * LM Studio). SDK retries are off: AiService decides on fallback.
 */
export class OpenAiCompatibleProvider implements AiProvider {
  readonly name: string;
  private readonly client: OpenAI;

  constructor(private readonly settings: OpenAiCompatibleSettings) {
    this.name = settings.kind;
    // Every option the SDK would otherwise read from process.env is given explicitly.
    this.client = new OpenAI({
      apiKey: settings.apiKey,
      adminAPIKey: null,
      baseURL: settings.baseUrl,
      organization: null,
      project: null,
      webhookSecret: null,
      maxRetries: 0,
      timeout: settings.timeoutMs,
      logLevel: 'off',
      ...(settings.transport === 'fetch' ? {} : { fetch: createNodeHttpFetch() }),
    });
  }

  async complete(model: string, request: CompletionRequest, signal?: AbortSignal): Promise<ProviderCompletion> {
    const started = performance.now();
    const scope = new CallScope(this.settings.timeoutMs, signal);
    try {
      const response = await this.client.chat.completions
        .create(this.chatBody(model, request), this.requestOptions(scope))
        .catch((error: unknown) => {
          // Structured output is a hint: a model that refuses the response_format is asked again without it.
          if (!request.jsonSchema || !(error instanceof APIError) || error.status !== 400) throw error;
          const plain = { ...request, responseFormat: undefined, jsonSchema: undefined };
          return this.client.chat.completions.create(this.chatBody(model, plain), this.requestOptions(scope));
        });
      const latencyMs = elapsed(started);
      const usage = usageFromOpenAi(response.usage);
      const reportedModel = response.model || model;
      const choice = response.choices?.[0];
      const embeddedError = (response as unknown as Json).error;
      if (!choice || isObject(embeddedError)) {
        // OpenRouter can answer 200 with {"error": {...}} when the upstream model failed.
        const partial = usage ? { text: '', usage, model: reportedModel, latencyMs } : undefined;
        const code = isObject(embeddedError) ? count(embeddedError.code) : undefined;
        if (code && code >= 400) throw AiProviderCallError.fromStatus(code, partial);
        throw new AiProviderCallError('server_error', 'returned no answer', { partial });
      }
      return {
        // A refusal comes with content null; its text is the answer a client would show.
        text: choice.message?.content ?? choice.message?.refusal ?? '',
        model: reportedModel,
        provider: this.name,
        usage,
        finishReason: choice.finish_reason ?? null,
        latencyMs,
      };
    } catch (error) {
      throw this.classify(error, scope);
    } finally {
      scope.dispose();
    }
  }

  async *stream(model: string, request: CompletionRequest, signal?: AbortSignal): AsyncGenerator<ProviderStreamEvent> {
    const started = performance.now();
    const scope = new CallScope(this.settings.timeoutMs, signal);
    let accepted = false;
    let text = '';
    let usage: ProviderUsage | null = null;
    let finishReason: string | null = null;
    let reportedModel = model;
    const partial = (): PartialCompletion | undefined =>
      accepted ? { text, usage, model: reportedModel, latencyMs: elapsed(started) } : undefined;
    try {
      const upstream = await this.client.chat.completions.create(
        { ...this.chatBody(model, request), stream: true, stream_options: { include_usage: true } },
        this.requestOptions(scope),
      );
      accepted = true;
      scope.arm();
      for await (const chunk of upstream) {
        scope.arm();
        if (chunk.model) reportedModel = chunk.model;
        const chunkUsage = usageFromOpenAi(chunk.usage);
        if (chunkUsage) usage = chunkUsage;
        const choice = chunk.choices?.[0];
        if (choice?.finish_reason) finishReason = choice.finish_reason;
        const delta = choice?.delta?.content ?? choice?.delta?.refusal;
        if (delta) {
          text += delta;
          yield { type: 'delta', text: delta };
        }
      }
      // The SDK ends the iteration quietly when its signal aborts, so check who stopped it.
      if (scope.signal.aborted) throw new APIUserAbortError();
      if (finishReason === null && usage === null) {
        throw new AiProviderCallError('network', 'ended the stream before it was complete', { partial: partial() });
      }
    } catch (error) {
      throw this.classify(error, scope, partial());
    } finally {
      scope.dispose();
    }
    yield { type: 'done', model: reportedModel, provider: this.name, usage, finishReason, latencyMs: elapsed(started) };
  }

  async embed(model: string, inputs: string[], signal?: AbortSignal): Promise<ProviderEmbedding> {
    const started = performance.now();
    const scope = new CallScope(this.settings.timeoutMs, signal);
    try {
      // Explicit float: the SDK defaults to base64, which several compatible servers do not speak.
      const response = await this.client.embeddings.create(
        { model: this.modelId(model), input: inputs, encoding_format: 'float' },
        this.requestOptions(scope),
      );
      const data = [...(response.data ?? [])].sort((a, b) => a.index - b.index);
      if (data.length !== inputs.length) {
        throw new AiProviderCallError('server_error', `returned ${data.length} vectors for ${inputs.length} inputs`);
      }
      const raw = response.usage as unknown;
      const promptTokens = isObject(raw) ? count(raw.prompt_tokens) : undefined;
      const cost = isObject(raw) ? count(raw.cost) : undefined;
      return {
        vectors: data.map((item) => item.embedding),
        model: response.model || model,
        provider: this.name,
        usage:
          promptTokens === undefined
            ? null
            : {
                promptTokens,
                totalTokens: (isObject(raw) ? count(raw.total_tokens) : undefined) ?? promptTokens,
                ...(cost !== undefined ? { costUsd: cost } : {}),
              },
        latencyMs: elapsed(started),
      };
    } catch (error) {
      throw this.classify(error, scope);
    } finally {
      scope.dispose();
    }
  }

  /** OpenAI itself rejects OpenRouter-style names such as openai/gpt-4o-mini. */
  private modelId(model: string): string {
    return this.settings.kind === 'openai' ? model.replace(/^openai\//, '') : model;
  }

  private chatBody(model: string, request: CompletionRequest): ChatCompletionCreateParamsNonStreaming {
    const messages = request.messages.map(
      (message) =>
        ({ role: message.role, content: message.content, ...(message.name ? { name: message.name } : {}) }) as ChatCompletionMessageParam,
    );
    return {
      model: this.modelId(model),
      messages,
      // OpenAI's reasoning models reject max_tokens; OpenRouter and most compatible servers only know max_tokens.
      ...(request.maxTokens === undefined
        ? {}
        : this.settings.kind === 'openai'
          ? { max_completion_tokens: request.maxTokens }
          : { max_tokens: request.maxTokens }),
      ...(request.temperature === undefined ? {} : { temperature: request.temperature }),
      ...(request.responseFormat === 'json_object' ? { response_format: this.responseFormat(model, request) } : {}),
    };
  }

  private responseFormat(model: string, request: CompletionRequest): ChatCompletionCreateParamsNonStreaming['response_format'] {
    if (!request.jsonSchema || !acceptsJsonSchema(model)) return { type: 'json_object' };
    // strict: false, so a schema need not list every property as required.
    return { type: 'json_schema', json_schema: { name: request.jsonSchema.name, schema: request.jsonSchema.schema, strict: false } };
  }

  private requestOptions(scope: CallScope) {
    return { signal: scope.signal, timeout: this.settings.timeoutMs, maxRetries: 0 };
  }

  private classify(error: unknown, scope: CallScope, partial?: PartialCompletion): AiProviderCallError {
    if (error instanceof AiProviderCallError) return error;
    const options = { partial, cause: error };
    if (scope.timedOut || error instanceof APIConnectionTimeoutError) {
      return new AiProviderCallError('timeout', `timed out after ${this.settings.timeoutMs} ms`, options);
    }
    if (scope.callerAborted || error instanceof APIUserAbortError) {
      return new AiProviderCallError('aborted', 'was aborted by the caller', options);
    }
    if (error instanceof APIConnectionError) {
      const code = errorCode(error);
      return new AiProviderCallError('network', `connection failed${code ? ` (${code})` : ''}`, options);
    }
    if (error instanceof APIError) {
      if (typeof error.status === 'number') return AiProviderCallError.fromStatus(error.status, partial, retryAfterOf(error.headers));
      // An {"error": ...} event inside a 200 stream.
      const code = isObject(error.error) ? count(error.error.code) : undefined;
      if (code && code >= 400) {
        const classified = AiProviderCallError.fromStatus(code, partial);
        return new AiProviderCallError(classified.kind, `reported error ${code} mid-stream`, options);
      }
      return new AiProviderCallError('server_error', 'reported an error mid-stream', options);
    }
    if (error instanceof SyntaxError) {
      return new AiProviderCallError('server_error', 'returned a malformed response', options);
    }
    const code = errorCode(error);
    return new AiProviderCallError('network', `connection was cut${code ? ` (${code})` : ''}`, options);
  }
}

/** Retry-After as seconds (delta form only; an HTTP date is rare from AI providers). */
function retryAfterOf(headers: unknown): number | undefined {
  const value = headers instanceof Headers ? headers.get('retry-after') : undefined;
  const seconds = value ? Number(value) : NaN;
  return Number.isFinite(seconds) && seconds >= 0 ? Math.ceil(seconds) : undefined;
}

function elapsed(started: number): number {
  return Math.round(performance.now() - started);
}
