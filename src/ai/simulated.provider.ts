import { performance } from 'node:perf_hooks';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { AiProviderCallError } from './ai-errors';
import type {
  AiProvider,
  CompletionRequest,
  ProviderCompletion,
  ProviderEmbedding,
  ProviderStreamEvent,
  ProviderUsage,
} from './ai-provider.interface';
import { hashedEmbeddingAsync } from './hashed-embedding';
import { TokenizerService } from './tokenizer.service';

export const SIMULATED = 'simulated';

/**
 * Stands in when no provider is configured: deterministic answers (the feature's
 * `simulatedAnswer` when given), real tokenizer counts, hashed bag-of-words vectors.
 */
export class SimulatedProvider implements AiProvider {
  readonly name = SIMULATED;

  constructor(private readonly tokenizer: TokenizerService) {}

  answerFor(request: CompletionRequest): string {
    if (request.simulatedAnswer !== undefined) return request.simulatedAnswer;
    const lastUser = [...request.messages].reverse().find((message) => message.role === 'user')?.content ?? '';
    const excerpt = lastUser.length > 200 ? `${lastUser.slice(0, 200)}...` : lastUser;
    const answer = `[simulated answer: no AI provider is configured] You asked: "${excerpt}"`;
    return request.responseFormat === 'json_object' ? JSON.stringify({ simulated: true, answer }) : answer;
  }

  async complete(model: string, request: CompletionRequest, signal?: AbortSignal): Promise<ProviderCompletion> {
    const started = performance.now();
    throwIfAborted(signal);
    const text = this.answerFor(request);
    return {
      text,
      model: SIMULATED,
      provider: SIMULATED,
      usage: await this.usageFor(model, request, text),
      finishReason: 'stop',
      latencyMs: Math.round(performance.now() - started),
    };
  }

  async *stream(model: string, request: CompletionRequest, signal?: AbortSignal): AsyncGenerator<ProviderStreamEvent> {
    const started = performance.now();
    const text = this.answerFor(request);
    let sent = '';
    for (const piece of text.match(/\s*\S+/g) ?? []) {
      await nextTurn();
      throwIfAborted(signal, () => ({
        text: sent,
        usage: null,
        model: SIMULATED,
        latencyMs: Math.round(performance.now() - started),
      }));
      sent += piece;
      yield { type: 'delta', text: piece };
    }
    yield {
      type: 'done',
      model: SIMULATED,
      provider: SIMULATED,
      usage: await this.usageFor(model, request, text),
      finishReason: 'stop',
      latencyMs: Math.round(performance.now() - started),
    };
  }

  async embed(model: string, inputs: string[], signal?: AbortSignal): Promise<ProviderEmbedding> {
    const started = performance.now();
    throwIfAborted(signal);
    const promptTokens = await this.tokenizer.countTextsAsync(inputs, model);
    const vectors: number[][] = [];
    for (const input of inputs) vectors.push(await hashedEmbeddingAsync(input));
    return {
      vectors,
      model: SIMULATED,
      provider: SIMULATED,
      usage: { promptTokens, totalTokens: promptTokens },
      latencyMs: Math.round(performance.now() - started),
    };
  }

  private async usageFor(model: string, request: CompletionRequest, text: string): Promise<ProviderUsage> {
    const promptTokens = await this.tokenizer.countMessagesAsync(request.messages, model);
    const completionTokens = await this.tokenizer.countTextAsync(text, model);
    return { promptTokens, completionTokens, totalTokens: promptTokens + completionTokens };
  }
}

function throwIfAborted(signal: AbortSignal | undefined, partial?: () => NonNullable<AiProviderCallError['partial']>): void {
  if (signal?.aborted) {
    throw new AiProviderCallError('aborted', 'was aborted by the caller', { partial: partial?.() });
  }
}
