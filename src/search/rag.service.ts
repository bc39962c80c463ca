import { HttpException, Injectable } from '@nestjs/common';
import { AiService, SpentUsage } from '../ai/ai.service';
import type { ChatMessage, CompletionRequest } from '../ai/ai-provider.interface';
import { RequestTokenUsageDto, toRequestTokenUsage } from '../ai/dto/request-token-usage.dto';
import { PricingService } from '../ai/pricing.service';
import { TokenizerService } from '../ai/tokenizer.service';
import { AppConfig } from '../config/app-config';
import type { ScoredChunk } from '../embeddings/resource-chunks.service';
import type { RequestBudget } from '../limits/request-budget';
import type { OperationType } from '../token-tracking/usage-record';
import { RagAnswerDto } from './dto/rag-answer.dto';
import { RagAnswerResponseDto, RagSourceDto, SearchCacheOutcomeDto } from './dto/search-responses.dto';
import { formatPassages, NO_CONTEXT_ANSWER, ragMessages, selectPassages, simulatedRagAnswer } from './rag-prompt';
import { normaliseQuery } from './search-query';
import { SearchInput, SearchOutcome, SearchService } from './search.service';

export interface RagContext {
  /** The chunks given to the model, best first; empty when none was relevant. */
  passages: ScoredChunk[];
  search: SearchOutcome;
}

export type RagStreamEvent =
  | { type: 'delta'; text: string }
  | { type: 'done'; sources: RagSourceDto[]; model: string | null; cache: SearchCacheOutcomeDto; token_usage: RequestTokenUsageDto }
  /** The provider failed after text was sent; token_usage is then an estimate. */
  | { type: 'error'; message: string; token_usage: RequestTokenUsageDto };

/** A RAG answer call: its operation and its prompt without passages. */
export interface RagPlan {
  operation: OperationType;
  baseMessages: ChatMessage[];
}

/** Tokens a passage adds beyond its text: its `[resource id] (chunk n)` header and separators, with a margin for tokenizers that count the text differently. */
const PASSAGE_OVERHEAD_TOKENS = 64;

const toSources = (passages: readonly ScoredChunk[]): RagSourceDto[] =>
  passages.map((passage) => ({ resource_id: passage.resourceId, chunk_index: passage.chunkIndex, score: passage.score }));

/**
 * Answers from a user's resources: the search embedding (an `embedding` operation, free
 * when cached) finds the passages, then one model call answers from them citing resource
 * ids (`rag_answer`, or `rag_streaming` when streamed). When no passage is relevant no
 * model is asked: the answer says the resources do not cover the question.
 */
@Injectable()
export class RagService {
  constructor(
    private readonly search: SearchService,
    private readonly ai: AiService,
    private readonly tokenizer: TokenizerService,
    private readonly pricing: PricingService,
    private readonly config: AppConfig,
  ) {}

  /**
   * Reserves a RAG request's query embedding and its answer call before the embedding is made,
   * so at the edge of a limit the request is refused whole (429) before anything is billed. The
   * answer's part holds room for one passage at least and for RAG_CONTEXT_MAX_TOKENS of passages
   * when the limit leaves it; retrieve() then gives the model only the passages that part holds.
   * `baseMessages`: the answer's prompt without passages.
   */
  reserve(userId: string, query: string, plan: RagPlan): Promise<RequestBudget | undefined> {
    const onePassage = this.onePassageTokens();
    return this.ai.reserveRequest(userId, [
      { operations: ['embedding'], request: { messages: [{ role: 'user', content: normaliseQuery(query) }], maxTokens: 0 } },
      {
        operations: [plan.operation],
        request: { messages: plan.baseMessages },
        extraPromptTokens: onePassage,
        optionalPromptTokens: Math.max(0, this.config.RAG_CONTEXT_MAX_TOKENS - onePassage),
      },
    ]);
  }

  /** The passages for `input`; with a reserved `plan`, only as many as its answer part holds room for. */
  async retrieve(input: SearchInput, requestId?: string, plan?: RagPlan & { budget?: RequestBudget }): Promise<RagContext> {
    const search = await this.search.search(input, requestId, plan?.budget);
    const model = this.config.AI_PRIMARY_MODEL;
    const tokens = new Map<string, number>();
    for (const hit of search.hits) {
      if (hit.score >= this.config.RAG_MIN_SCORE && !tokens.has(hit.text)) tokens.set(hit.text, await this.tokenizer.countTextAsync(hit.text, model));
    }
    const maxTokens = plan?.budget ? await this.contextTokens(plan.budget, plan) : this.config.RAG_CONTEXT_MAX_TOKENS;
    const passages = selectPassages(search.hits, { minScore: this.config.RAG_MIN_SCORE, maxTokens }, (text) => tokens.get(text) ?? 0);
    return { passages, search };
  }

  /** Passage tokens the answer's reserved part leaves room for, keeping its completion hold (never less than one passage). */
  private async contextTokens(budget: RequestBudget, plan: RagPlan): Promise<number> {
    const part = budget.peek(plan.operation);
    if (!part?.enforced) return this.config.RAG_CONTEXT_MAX_TOKENS;
    const base = await this.ai.estimatePromptTokens({ messages: plan.baseMessages });
    const room = part.tokens - base - this.ai.heldCompletionTokens({});
    return Math.min(this.config.RAG_CONTEXT_MAX_TOKENS, Math.max(room, this.config.EMBED_CHUNK_TOKENS));
  }

  /** A chunk's tokens (EMBED_CHUNK_TOKENS, counted by the embedding model's tokenizer) and its header, with room to spare. */
  private onePassageTokens(): number {
    return Math.min(this.config.RAG_CONTEXT_MAX_TOKENS, this.config.EMBED_CHUNK_TOKENS) + PASSAGE_OVERHEAD_TOKENS;
  }

  /** For a chat that answers anyway: the passages as a system message, or a note that none matched. */
  groundingMessage(passages: readonly ScoredChunk[]): ChatMessage {
    if (passages.length === 0) {
      return { role: 'system', content: "No passage of the user's resources matched this message: answer from general knowledge and say that their resources did not cover it." };
    }
    return {
      role: 'system',
      content: `Passages from the user's resources that may help. When you use one, cite its resource id in square brackets, e.g. [pdf_123].\n\n${formatPassages(passages)}`,
    };
  }

  async answer(dto: RagAnswerDto, requestId?: string): Promise<RagAnswerResponseDto> {
    const plan: RagPlan = { operation: 'rag_answer', baseMessages: ragMessages(dto.query, []) };
    const budget = await this.reserve(dto.userId, dto.query, plan);
    try {
      const { passages, search } = await this.retrieve(dto, requestId, { ...plan, budget });
      if (passages.length === 0) {
        return { answer: NO_CONTEXT_ANSWER, sources: [], model: null, provider: null, cache: search.cache, token_usage: toRequestTokenUsage(search.spent) };
      }
      const completion = await this.ai.complete(this.request(dto.query, passages), { userId: dto.userId, requestId, operationType: 'rag_answer', query: dto.query, budget });
      return {
        answer: completion.text,
        sources: toSources(passages),
        model: completion.model,
        provider: completion.provider,
        cache: search.cache,
        token_usage: toRequestTokenUsage([...search.spent, completion.spent]),
      };
    } finally {
      await this.ai.releaseRequest(budget);
    }
  }

  /**
   * Errors before the first event (limits, a provider that fails at once) are thrown so
   * the caller can still answer with their status; a failure after text was sent becomes
   * an `error` event with an estimated usage (the ledger holds the same estimate).
   */
  async *stream(dto: RagAnswerDto, options: { requestId?: string; signal?: AbortSignal }): AsyncGenerator<RagStreamEvent> {
    const plan: RagPlan = { operation: 'rag_streaming', baseMessages: ragMessages(dto.query, []) };
    const budget = await this.reserve(dto.userId, dto.query, plan);
    try {
      yield* this.streamWithin(dto, options, { ...plan, budget });
    } finally {
      await this.ai.releaseRequest(budget);
    }
  }

  private async *streamWithin(dto: RagAnswerDto, options: { requestId?: string; signal?: AbortSignal }, plan: RagPlan & { budget?: RequestBudget }): AsyncGenerator<RagStreamEvent> {
    const { passages, search } = await this.retrieve(dto, options.requestId, plan);
    if (passages.length === 0) {
      yield { type: 'delta', text: NO_CONTEXT_ANSWER };
      yield { type: 'done', sources: [], model: null, cache: search.cache, token_usage: toRequestTokenUsage(search.spent) };
      return;
    }
    const request = this.request(dto.query, passages);
    let text = '';
    try {
      const context = { userId: dto.userId, requestId: options.requestId, signal: options.signal, operationType: plan.operation, query: dto.query, budget: plan.budget };
      for await (const event of this.ai.stream(request, context)) {
        if (event.type === 'delta') {
          text += event.text;
          yield event;
          continue;
        }
        yield {
          type: 'done',
          sources: toSources(passages),
          model: event.result.model,
          cache: search.cache,
          token_usage: toRequestTokenUsage([...search.spent, event.result.spent]),
        };
      }
    } catch (error) {
      if (text.length === 0 || options.signal?.aborted) throw error;
      const message = error instanceof HttpException ? error.message : 'the answer stream failed';
      yield { type: 'error', message, token_usage: toRequestTokenUsage([...search.spent, await this.estimate(request, text)]) };
    }
  }

  private request(query: string, passages: readonly ScoredChunk[]): CompletionRequest {
    return { messages: ragMessages(query, passages), simulatedAnswer: simulatedRagAnswer(passages) };
  }

  /** What a cut stream cost, from our tokenizer (the provider never sent its figures). */
  private async estimate(request: CompletionRequest, text: string): Promise<SpentUsage> {
    const model = this.config.AI_PRIMARY_MODEL;
    const promptTokens = await this.ai.estimatePromptTokens(request, model);
    const completionTokens = await this.tokenizer.countTextAsync(text, model);
    const { costMicros } = this.pricing.price(model, { promptTokens, completionTokens, embeddingTokens: 0 });
    return { promptTokens, completionTokens, embeddingTokens: 0, totalTokens: promptTokens + completionTokens, costMicros, estimated: true };
  }
}
