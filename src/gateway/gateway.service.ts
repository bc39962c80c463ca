import { BadRequestException, Injectable } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import { AiCompletion, AiService, AiStreamEvent } from '../ai/ai.service';
import type { ChatMessage, CompletionRequest } from '../ai/ai-provider.interface';
import { microsToUsd } from '../common/money';
import { AppConfig } from '../config/app-config';
import { MAX_TEXT } from '../embeddings/dto/embed-resource.dto';
import { EmbeddingsService } from '../embeddings/embeddings.service';
import type { TrackResult, WindowSnapshot } from '../token-tracking/usage-record';
import { ChatCompletionRequestDto } from './dto/chat-completion-request.dto';
import { EmbeddingsRequestDto } from './dto/embeddings-request.dto';

export interface GatewayCall {
  userId: string;
  requestId?: string;
  signal?: AbortSignal;
}

/** What a gateway response reports about itself in x-token-ledger-* headers. */
export interface LedgerFigures {
  promptTokens: number;
  completionTokens: number;
  totalTokens: number;
  costUsd: number;
  estimated: boolean;
  trackingEnabled: boolean;
  /** The rolling window and limit counters as this call's last settle left them. */
  window?: WindowSnapshot;
}

/**
 * Fewer than OpenAI's 2,048: 256 dense 1,536-dimension vectors are already ~8 MB of JSON (16 MB at
 * 3,072), held in memory and serialised (between turns of the event loop) for one answer.
 */
export const MAX_EMBEDDING_INPUTS = 256;

@Injectable()
export class GatewayService {
  constructor(
    private readonly ai: AiService,
    private readonly embeddings: EmbeddingsService,
    private readonly config: AppConfig,
  ) {}

  async complete(dto: ChatCompletionRequestDto, call: GatewayCall) {
    const result = await this.ai.complete(this.toRequest(dto), this.context(dto, call));
    return { body: this.toCompletion(result), figures: this.figuresOf(result) };
  }

  stream(dto: ChatCompletionRequestDto, call: GatewayCall): AsyncGenerator<AiStreamEvent> {
    return this.ai.stream(this.toRequest(dto), this.context(dto, call));
  }

  async embed(dto: EmbeddingsRequestDto, call: GatewayCall) {
    const inputs = typeof dto.input === 'string' ? [dto.input] : dto.input;
    if (!Array.isArray(inputs) || inputs.length === 0 || inputs.length > MAX_EMBEDDING_INPUTS || inputs.some((input) => typeof input !== 'string' || input.length === 0)) {
      throw new BadRequestException(`input must be a non-empty string or an array of 1 to ${MAX_EMBEDDING_INPUTS} non-empty strings`);
    }
    const tooLong = inputs.findIndex((input) => input.length > MAX_TEXT);
    if (tooLong >= 0) {
      const field = typeof dto.input === 'string' ? 'input' : `input[${tooLong}]`;
      throw new BadRequestException({ message: `${field} must be at most ${MAX_TEXT} characters long`, fields: [{ field, errors: [`${field} must be at most ${MAX_TEXT} characters long`] }] });
    }
    const result = await this.embeddings.embedTexts(inputs, {
      userId: call.userId,
      model: dto.model,
      requestId: call.requestId,
      operationType: inputs.length > 1 ? 'batch_embedding' : 'embedding',
    });
    const tokens = result.spent.reduce((sum, part) => sum + part.embeddingTokens, 0);
    const costMicros = result.spent.reduce((sum, part) => sum + part.costMicros, 0);
    return {
      body: {
        object: 'list',
        data: result.vectors.map((vector, index) => ({
          object: 'embedding',
          index,
          embedding: dto.encoding_format === 'base64' ? Buffer.from(new Float32Array(vector).buffer).toString('base64') : vector,
        })),
        model: result.model,
        usage: { prompt_tokens: tokens, total_tokens: tokens },
      },
      figures: {
        promptTokens: tokens,
        completionTokens: 0,
        totalTokens: tokens,
        costUsd: microsToUsd(costMicros),
        estimated: result.spent.some((part) => part.estimated),
        trackingEnabled: this.isTracked(result.tracked),
        window: result.tracked.at(-1)?.window,
        cacheHits: result.cacheHits,
      },
    };
  }

  models() {
    const created = Math.floor(Date.now() / 1000);
    const ids = [this.config.AI_PRIMARY_MODEL, this.config.AI_FALLBACK_MODEL, this.config.AI_EMBEDDING_MODEL].filter(
      (id): id is string => !!id && id.toLowerCase() !== 'none',
    );
    return {
      object: 'list',
      data: [...new Set(ids)].map((id) => ({ id, object: 'model', created, owned_by: this.ai.providerName })),
    };
  }

  toCompletion(result: AiCompletion) {
    return {
      id: `chatcmpl-${randomUUID()}`,
      object: 'chat.completion',
      created: Math.floor(Date.now() / 1000),
      model: result.model,
      choices: [{ index: 0, message: { role: 'assistant', content: result.text, refusal: null }, logprobs: null, finish_reason: result.finishReason ?? 'stop' }],
      usage: { prompt_tokens: result.usage.promptTokens, completion_tokens: result.usage.completionTokens, total_tokens: result.usage.totalTokens },
      system_fingerprint: null,
    };
  }

  figuresOf(result: AiCompletion): LedgerFigures {
    return {
      promptTokens: result.spent.promptTokens,
      completionTokens: result.spent.completionTokens,
      totalTokens: result.spent.totalTokens,
      costUsd: microsToUsd(result.spent.costMicros),
      estimated: result.spent.estimated,
      trackingEnabled: this.isTracked(result.tracked),
      window: result.tracked.at(-1)?.window,
    };
  }

  /** Tracked when every billed attempt reached the ledger; with nothing billed, when tracking is on. */
  private isTracked(tracked: TrackResult[]): boolean {
    return tracked.length === 0 ? this.config.TRACKING_ENABLED : tracked.every((result) => result.trackingEnabled);
  }

  private toRequest(dto: ChatCompletionRequestDto): CompletionRequest {
    const messages: ChatMessage[] = dto.messages.map((message) => ({
      role: message.role === 'developer' ? 'system' : message.role,
      content: message.content,
      ...(message.name ? { name: message.name } : {}),
    }));
    const responseType = dto.response_format?.type;
    if (responseType !== undefined && responseType !== 'text' && responseType !== 'json_object') {
      throw new BadRequestException('response_format.type must be text or json_object');
    }
    return {
      messages,
      maxTokens: dto.max_completion_tokens ?? dto.max_tokens,
      temperature: dto.temperature,
      responseFormat: responseType === 'json_object' ? 'json_object' : undefined,
    };
  }

  /** The model the client named, exactly; the configured fallback only backs up the configured primary. */
  private context(dto: ChatCompletionRequestDto, call: GatewayCall) {
    return {
      userId: call.userId,
      requestId: call.requestId,
      signal: call.signal,
      operationType: 'chat_completion' as const,
      model: dto.model,
      fallbackModel: dto.model === this.config.AI_PRIMARY_MODEL ? undefined : null,
      // A pass-through: the client gets what the model said (empty, prose for json_object), as from the provider itself.
      anyAnswer: true,
    };
  }
}
