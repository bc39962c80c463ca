import { Inject, Injectable, Logger } from '@nestjs/common';
import { Clock } from '../common/clock';
import { AppConfig } from '../config/app-config';
import { PlannedCall, RequestBudget } from '../limits/request-budget';
import { MIN_COMPLETION_TOKENS, Reservation, UsageLimitsService } from '../limits/usage-limits.service';
import { TokenTrackingService } from '../token-tracking/token-tracking.service';
import type { CostSource, OperationType, TrackResult, UsageRecord } from '../token-tracking/usage-record';
import {
  AiFailedAttempt,
  aiFailureException,
  AiProviderCallError,
  AiRequestAbortedException,
  PartialCompletion,
} from './ai-errors';
import { AI_PROVIDER, AiProvider, CompletionRequest, ProviderUsage } from './ai-provider.interface';
import { priceAttribution, PricingService } from './pricing.service';
import { TokenizerService } from './tokenizer.service';
import { parseJsonAnswer } from './json-answer';
import { currentRequestUsage } from './request-usage';

export interface AiCallContext {
  /** Whose ledger the usage goes to; without it nothing is tracked. */
  userId?: string;
  operationType: OperationType;
  requestId?: string;
  /** Abort the provider call (e.g. the client disconnected). */
  signal?: AbortSignal;
  /** What was asked, for the usage event; defaults to the last user message. */
  query?: string;
  /** Parts reserved for all the request's calls before the first (see AiService.reserveRequest). */
  budget?: RequestBudget;
}

export interface AiCompleteContext extends AiCallContext {
  /** Overrides AI_PRIMARY_MODEL. */
  model?: string;
  /** Overrides AI_FALLBACK_MODEL; null disables the fallback. */
  fallbackModel?: string | null;
  /**
   * Judges an answer the provider returned: a reason string rejects it (the attempt is
   * tracked as a billed failure and one repair call on the same model quotes the reason).
   * With responseFormat json_object, an answer holding no JSON object (whole, fenced or
   * inside prose) is rejected before this runs.
   */
  validate?: (text: string) => string | null | undefined;
  /** Every answer is usable, even empty or prose: the feature maps it (e.g. chat intent). */
  anyAnswer?: boolean;
  /** The user message of the repair call; default: a generic one quoting the reason. */
  repairPrompt?: (answer: string, reason: string) => string;
}

/** A call a request will make, for AiService.reserveRequest. */
export interface PlannedRequest {
  operations: OperationType[];
  request: Pick<CompletionRequest, 'messages' | 'maxTokens'>;
  /** Prompt tokens the call may add before it is made (e.g. an earlier call's answer). */
  extraPromptTokens?: number;
  /**
   * Prompt tokens the call adds only if the limit leaves room (a RAG answer's passages): the part
   * holds them above its minimum when it can, and the caller fits them to what it holds (see
   * RequestBudget.peek).
   */
  optionalPromptTokens?: number;
}

export interface AiEmbedContext extends Omit<AiCallContext, 'operationType'> {
  /** Default: `embedding` for one input, `batch_embedding` for several. */
  operationType?: OperationType;
  /** Overrides AI_EMBEDDING_MODEL. */
  model?: string;
}

export interface AiUsage {
  promptTokens: number;
  completionTokens: number;
  totalTokens: number;
  cachedTokens?: number;
  cacheWriteTokens?: number;
  reasoningTokens?: number;
  /** True when any count came from our tokenizer instead of the provider. */
  estimated: boolean;
}

export interface AiAttempt {
  role: 'primary' | 'fallback';
  /** The model we asked for. */
  model: string;
  outcome: 'success' | AiProviderCallError['kind'];
  /** Whether the provider billed it (and so it was priced and tracked). */
  billed: boolean;
  latencyMs: number;
  /** The repair call after an unusable answer from the same model. */
  repair?: boolean;
}

/** Everything the provider billed for one call, across primary and fallback attempts. */
export interface SpentUsage {
  promptTokens: number;
  completionTokens: number;
  embeddingTokens: number;
  totalTokens: number;
  costMicros: number;
  estimated: boolean;
}

interface CallLog {
  tracked: TrackResult[];
  spent: SpentUsage;
}

const newCallLog = (): CallLog => ({
  tracked: [],
  spent: { promptTokens: 0, completionTokens: 0, embeddingTokens: 0, totalTokens: 0, costMicros: 0, estimated: false },
});

export interface AiCompletion {
  text: string;
  /** The JSON object read from the answer when responseFormat was json_object. */
  json?: Record<string, unknown>;
  /** The model as the provider reported it. */
  model: string;
  provider: string;
  usage: AiUsage;
  costMicros: number;
  costSource: CostSource;
  finishReason: string | null;
  latencyMs: number;
  attempts: AiAttempt[];
  /** One ledger result per billed attempt, in order; empty without a userId. */
  tracked: TrackResult[];
  /** Usage of every billed attempt of this call (whether or not it was tracked). */
  spent: SpentUsage;
}

export type AiStreamEvent = { type: 'delta'; text: string } | { type: 'done'; result: AiCompletion };

export interface AiEmbeddingUsage {
  embeddingTokens: number;
  totalTokens: number;
  estimated: boolean;
}

export interface AiEmbeddings {
  vectors: number[][];
  model: string;
  provider: string;
  usage: AiEmbeddingUsage;
  costMicros: number;
  costSource: CostSource;
  latencyMs: number;
  tracked: TrackResult[];
}

interface ModelStep {
  role: 'primary' | 'fallback';
  model: string;
}

interface BilledAttempt {
  requestedModel: string;
  reportedModel: string;
  usage: AiUsage;
  costUsd?: number;
  latencyMs: number;
  success: boolean;
  errorMessage?: string;
}

interface AttemptRun {
  failures: AiFailedAttempt[];
  attempts: AiAttempt[];
  log: CallLog;
}

type AttemptOutcome =
  | { kind: 'answer'; result: AiCompletion }
  | { kind: 'unusable'; text: string; reason: string; failure: AiProviderCallError }
  | { kind: 'failed'; failure: AiProviderCallError };

type Verdict = { ok: true; json?: Record<string, unknown> } | { ok: false; reason: string };

function defaultRepairPrompt(answer: string, reason: string, json: boolean): string {
  const shape = json ? 'only the JSON object asked for: no prose, no Markdown fences' : 'a complete answer';
  return `Your previous answer could not be used: ${reason}. Answer the request again with ${shape}.${answer.trim() ? '' : ' Your previous answer was empty.'}`;
}

/**
 * A stream that failed after the provider accepted it cost what it produced. One that reported
 * an error before any text or usage is treated as unbilled, as the same error without a stream
 * is; a caller's abort still counts the prompt the provider had started on.
 */
function billedPartial(failure: AiProviderCallError): boolean {
  const partial = failure.partial;
  return !!partial && (partial.usage !== null || partial.text.length > 0 || failure.kind === 'aborted');
}

const redactSecrets = (text: string) => text.replace(/\b(sk|rk|pk)-[A-Za-z0-9_*.-]{6,}/g, '$1-[redacted]').replace(/Bearer\s+\S+/gi, 'Bearer [redacted]');

const lastUserText = (request: CompletionRequest) => [...request.messages].reverse().find((message) => message.role === 'user')?.content;

const integer = (value: number | undefined) => (value === undefined ? undefined : Math.max(0, Math.round(value)));

/**
 * The one door to AI for every feature: primary model, fallback on retryable
 * failures, pricing, and a ledger record for every attempt the provider billed.
 */
@Injectable()
export class AiService {
  private readonly logger = new Logger(AiService.name);
  /** Prepared requests whose max_tokens was not given by the caller (they reserve AI_RESERVE_COMPLETION_TOKENS). */
  private readonly defaultedMaxTokens = new WeakSet<CompletionRequest>();

  constructor(
    @Inject(AI_PROVIDER) private readonly provider: AiProvider,
    private readonly tokenizer: TokenizerService,
    private readonly pricing: PricingService,
    private readonly ledger: TokenTrackingService,
    private readonly limits: UsageLimitsService,
    private readonly config: AppConfig,
    private readonly clock: Clock,
  ) {}

  get providerName(): string {
    return this.provider.name;
  }

  /**
   * Primary model, then the fallback on provider failures only (5xx, timeout, 429, connection).
   * A working model whose answer is unusable gets one repair call on the same model that quotes
   * what was wrong; when that fails too the call fails with 502 without trying the fallback.
   */
  async complete(request: CompletionRequest, given: AiCompleteContext): Promise<AiCompletion> {
    currentRequestUsage()?.beginAi();
    const prepared = this.prepare(request);
    const context = { ...given, query: given.query ?? lastUserText(request) };
    const run: AttemptRun = { failures: [], attempts: [], log: newCallLog() };

    for (const step of this.modelChain(context)) {
      let outcome = await this.attemptCompletion(step, prepared, context, run, false);
      if (outcome.kind === 'unusable') {
        outcome = await this.attemptCompletion(step, this.repairRequest(prepared, outcome.text, outcome.reason, context), context, run, true);
        if (outcome.kind === 'unusable') break;
      }
      if (outcome.kind === 'answer') return outcome.result;
      if (!outcome.failure.retryable) break;
    }
    throw aiFailureException(run.failures);
  }

  private async attemptCompletion(
    step: ModelStep,
    prepared: CompletionRequest,
    context: AiCompleteContext & { query?: string },
    run: AttemptRun,
    repair: boolean,
  ): Promise<AttemptOutcome> {
    const started = Date.now();
    const reservation = await this.reserve(context, step.model, prepared);
    currentRequestUsage()?.attempted(context.userId);
    const call = this.withinReservation(prepared, reservation);
    const label = repair ? `${step.role} model ${step.model} (repair)` : `${step.role} model ${step.model}`;
    let failure: AiProviderCallError;
    try {
      const completion = await this.provider.complete(step.model, call, context.signal);
      const verdict = this.judge(completion.text, completion.finishReason, call, context);
      const billed: BilledAttempt = {
        requestedModel: step.model,
        reportedModel: completion.model,
        usage: await this.usageOf(completion.usage, call, completion.text, step.model),
        costUsd: completion.usage?.costUsd,
        latencyMs: completion.latencyMs,
        success: verdict.ok,
        errorMessage: verdict.ok ? undefined : `${label} returned an unusable answer: ${verdict.reason}`,
      };
      const priced = await this.record(billed, context, run.log, reservation);
      run.attempts.push({
        role: step.role,
        model: step.model,
        outcome: verdict.ok ? 'success' : 'invalid_answer',
        billed: true,
        latencyMs: completion.latencyMs,
        ...(repair ? { repair: true } : {}),
      });
      if (verdict.ok) {
        return {
          kind: 'answer',
          result: {
            text: completion.text,
            ...(verdict.json ? { json: verdict.json } : {}),
            model: completion.model,
            provider: completion.provider,
            usage: billed.usage,
            costMicros: priced.costMicros,
            costSource: priced.costSource,
            finishReason: completion.finishReason,
            latencyMs: completion.latencyMs,
            attempts: run.attempts,
            tracked: run.log.tracked,
            spent: run.log.spent,
          },
        };
      }
      failure = new AiProviderCallError('invalid_answer', `returned an unusable answer (${verdict.reason})`);
      this.logFailure(step, failure, context, repair);
      run.failures.push({ role: step.role, model: step.model, kind: failure.kind, detail: failure.detail, ...(repair ? { repair: true } : {}) });
      return { kind: 'unusable', text: completion.text, reason: verdict.reason, failure };
    } catch (error) {
      failure = this.asCallError(error);
      if (failure.partial) await this.recordPartial(failure, step, call, context, run.log, reservation);
      else await this.release(reservation, context);
      run.attempts.push({
        role: step.role,
        model: step.model,
        outcome: failure.kind,
        billed: !!failure.partial,
        latencyMs: Date.now() - started,
        ...(repair ? { repair: true } : {}),
      });
    }
    this.logFailure(step, failure, context, repair);
    if (failure.kind === 'aborted') throw new AiRequestAbortedException();
    run.failures.push({ role: step.role, model: step.model, kind: failure.kind, detail: failure.detail, status: failure.status, retryAfterSeconds: failure.retryAfterSeconds, ...(repair ? { repair: true } : {}) });
    return { kind: 'failed', failure };
  }

  /** The one repair call: the conversation so far, the unusable answer, and what was wrong with it. */
  private repairRequest(request: CompletionRequest, answer: string, reason: string, context: AiCompleteContext): CompletionRequest {
    const prompt = context.repairPrompt?.(answer, reason) ?? defaultRepairPrompt(answer, reason, request.responseFormat === 'json_object');
    const messages: CompletionRequest['messages'] = [...request.messages];
    // Some providers refuse an assistant turn without content.
    if (answer.trim().length > 0) messages.push({ role: 'assistant', content: answer });
    messages.push({ role: 'user', content: prompt });
    const repair = { ...request, messages };
    if (this.defaultedMaxTokens.has(request)) this.defaultedMaxTokens.add(repair);
    return repair;
  }

  /**
   * Text deltas, then one `done` event with the priced, tracked result. The fallback
   * is tried only while nothing has been emitted yet. A stream that is cut, aborted or
   * abandoned by the consumer is still tracked, with estimated counts.
   */
  async *stream(request: CompletionRequest, given: AiCompleteContext): AsyncGenerator<AiStreamEvent> {
    currentRequestUsage()?.beginAi();
    const prepared = this.prepare(request);
    const context = { ...given, query: given.query ?? lastUserText(request) };
    const failures: AiFailedAttempt[] = [];
    const attempts: AiAttempt[] = [];
    const log = newCallLog();

    for (const step of this.modelChain(context)) {
      let text = '';
      let settled = false;
      const started = Date.now();
      let failure: AiProviderCallError;
      const reservation = await this.reserve(context, step.model, prepared);
      currentRequestUsage()?.attempted(context.userId);
      const call = this.withinReservation(prepared, reservation);
      try {
        for await (const event of this.provider.stream(step.model, call, context.signal)) {
          if (event.type === 'delta') {
            text += event.text;
            yield { type: 'delta', text: event.text };
            continue;
          }
          settled = true;
          const billed: BilledAttempt = {
            requestedModel: step.model,
            reportedModel: event.model,
            usage: await this.usageOf(event.usage, prepared, text, step.model),
            costUsd: event.usage?.costUsd,
            latencyMs: event.latencyMs,
            success: true,
          };
          const priced = await this.record(billed, context, log, reservation);
          attempts.push({ role: step.role, model: step.model, outcome: 'success', billed: true, latencyMs: event.latencyMs });
          yield {
            type: 'done',
            result: {
              text,
              model: event.model,
              provider: event.provider,
              usage: billed.usage,
              costMicros: priced.costMicros,
              costSource: priced.costSource,
              finishReason: event.finishReason,
              latencyMs: event.latencyMs,
              attempts,
              tracked: log.tracked,
            spent: log.spent,
            },
          };
          return;
        }
        settled = true;
        failure = new AiProviderCallError('server_error', 'ended the stream without a final event', {
          partial: { text, usage: null, model: step.model, latencyMs: Date.now() - started },
        });
        await this.recordPartial(failure, step, prepared, context, log, reservation);
        attempts.push({ role: step.role, model: step.model, outcome: failure.kind, billed: true, latencyMs: Date.now() - started });
      } catch (error) {
        settled = true;
        failure = this.asCallError(error);
        if (billedPartial(failure)) await this.recordPartial(failure, step, prepared, context, log, reservation);
        else await this.release(reservation, context);
        attempts.push({ role: step.role, model: step.model, outcome: failure.kind, billed: billedPartial(failure), latencyMs: Date.now() - started });
      } finally {
        if (!settled) {
          // The consumer stopped iterating (break/return); the upstream call is already aborted.
          const abandoned = new AiProviderCallError('aborted', 'stream abandoned by the consumer', {
            partial: { text, usage: null, model: step.model, latencyMs: Date.now() - started },
          });
          await this.recordPartial(abandoned, step, prepared, context, log, reservation);
        }
      }
      this.logFailure(step, failure, context);
      if (failure.kind === 'aborted') throw new AiRequestAbortedException();
      failures.push({ role: step.role, model: step.model, kind: failure.kind, detail: failure.detail, status: failure.status, retryAfterSeconds: failure.retryAfterSeconds });
      // Once text reached the consumer, switching models would splice two answers together.
      if (!failure.retryable || text.length > 0) break;
    }
    throw aiFailureException(failures);
  }

  async embed(inputs: string[], context: AiEmbedContext): Promise<AiEmbeddings> {
    currentRequestUsage()?.beginAi();
    const model = context.model ?? this.config.AI_EMBEDDING_MODEL;
    const operationType = context.operationType ?? (inputs.length > 1 ? 'batch_embedding' : 'embedding');
    const log = newCallLog();
    if (inputs.length === 0) {
      return {
        vectors: [],
        model,
        provider: this.provider.name,
        usage: { embeddingTokens: 0, totalTokens: 0, estimated: false },
        costMicros: 0,
        costSource: 'catalog',
        latencyMs: 0,
        tracked: log.tracked,
      };
    }
    let failure: AiProviderCallError;
    const reservation = await this.reserveEmbedding(context, operationType, model, inputs);
    currentRequestUsage()?.attempted(context.userId);
    try {
      const result = await this.provider.embed(model, inputs, context.signal);
      const providerTokens = integer(result.usage?.promptTokens);
      const embeddingTokens = providerTokens ?? (await this.tokenizer.countTextsAsync(inputs, model));
      const usage: AiEmbeddingUsage = { embeddingTokens, totalTokens: embeddingTokens, estimated: providerTokens === undefined };
      const occurredAt = new Date(this.clock.now());
      const priced = this.pricing.price([result.model, model], { promptTokens: 0, completionTokens: 0, embeddingTokens, costUsd: result.usage?.costUsd }, occurredAt);
      await this.track(context.userId, log, {
        operationType,
        model: result.model,
        provider: result.provider,
        promptTokens: 0,
        completionTokens: 0,
        embeddingTokens,
        costMicros: priced.costMicros,
        costSource: priced.costSource,
        ...priceAttribution(priced),
        estimated: usage.estimated,
        latencyMs: result.latencyMs,
        success: true,
        requestId: context.requestId,
        occurredAt,
        query: context.query ?? inputs[0],
      }, reservation);
      return { vectors: result.vectors, model: result.model, provider: result.provider, usage, latencyMs: result.latencyMs, ...priced, tracked: log.tracked };
    } catch (error) {
      failure = this.asCallError(error);
      await this.release(reservation, context);
    }
    const step: ModelStep = { role: 'primary', model };
    this.logFailure(step, failure, { operationType, requestId: context.requestId, userId: context.userId });
    if (failure.kind === 'aborted') throw new AiRequestAbortedException();
    throw aiFailureException([{ role: 'primary', model, kind: failure.kind, detail: failure.detail, status: failure.status, retryAfterSeconds: failure.retryAfterSeconds }]);
  }

  /** Prompt tokens of a request as our tokenizer sees them (for budgets before calling). */
  estimatePromptTokens(request: CompletionRequest, model = this.config.AI_PRIMARY_MODEL): Promise<number> {
    return this.tokenizer.countMessagesAsync(request.messages, model);
  }

  /**
   * Reserves all the provider calls of one request before the first is made (e.g. a chat's
   * intent and answer), so the request is admitted whole or refused (429) before anything is
   * billed. Calls given with a `budget` in their context use these parts; release the rest
   * with releaseRequest() when the request ends. Undefined when nothing is tracked.
   */
  async reserveRequest(
    userId: string | undefined,
    calls: PlannedRequest[],
    model = this.config.AI_PRIMARY_MODEL,
  ): Promise<RequestBudget | undefined> {
    if (!userId || !this.config.TRACKING_ENABLED) return undefined;
    const models = this.modelChain({ operationType: calls[0].operations[0], model }).map((step) => step.model);
    const planned: PlannedCall[] = [];
    for (const { operations, request, extraPromptTokens, optionalPromptTokens } of calls) {
      const promptTokens = (await this.tokenizer.countMessagesAsync(request.messages, model)) + (extraPromptTokens ?? 0);
      const bounds = this.completionBounds(request.maxTokens);
      planned.push({ operations, promptTokens, ...bounds, reserveCompletionTokens: bounds.reserveCompletionTokens + (optionalPromptTokens ?? 0) });
    }
    const reservations = await this.limits.reserveParts(
      userId,
      planned.map((call) => ({ promptTokens: call.promptTokens, maxCompletionTokens: call.maxCompletionTokens, reserveCompletionTokens: call.reserveCompletionTokens })),
      Math.max(...models.map((candidate) => this.pricing.maxMicrosPerToken(candidate))),
    );
    return new RequestBudget(planned, reservations);
  }

  /** Completion tokens a call holds against a limited user's budget (what it may answer with). */
  heldCompletionTokens(request: Pick<CompletionRequest, 'maxTokens'>): number {
    return this.completionBounds(request.maxTokens).reserveCompletionTokens;
  }

  /** Releases what a request reserved and no call used. */
  async releaseRequest(budget: RequestBudget | undefined): Promise<void> {
    if (!budget) return;
    await Promise.all(budget.drain().map((reservation) => this.limits.release(reservation)));
  }

  /**
   * Reserves the call's worst case (prompt + max_tokens) against the user's limits before
   * any money is spent; throws 429 when a limit would be crossed. A call of a request that
   * reserved all its calls up front takes its part instead, topped up only when its prompt
   * turned out longer than planned.
   */
  private async reserve(context: AiCallContext, model: string, request: CompletionRequest): Promise<Reservation | undefined> {
    if (!context.userId || !this.config.TRACKING_ENABLED) return undefined;
    const promptTokens = await this.tokenizer.countMessagesAsync(request.messages, model);
    const bounds = this.completionBounds(this.defaultedMaxTokens.has(request) ? undefined : request.maxTokens);
    const held = context.budget?.take(context.operationType);
    if (held) {
      if (!held.enforced) return { ...held, maxCompletionTokens: bounds.maxCompletionTokens };
      const room = held.tokens - promptTokens;
      if (room >= Math.min(MIN_COMPLETION_TOKENS, bounds.maxCompletionTokens)) return { ...held, maxCompletionTokens: Math.min(room, bounds.maxCompletionTokens) };
      await this.limits.release(held);
    }
    return this.limits.reserve({ userId: context.userId, promptTokens, ...bounds, microsPerToken: this.pricing.maxMicrosPerToken(model) });
  }


  /** An embedding call's reservation: its request's part when one was reserved up front and holds enough. */
  private async reserveEmbedding(context: AiEmbedContext, operationType: OperationType, model: string, inputs: string[]): Promise<Reservation | undefined> {
    if (!context.userId || !this.config.TRACKING_ENABLED) return undefined;
    const promptTokens = await this.tokenizer.countTextsAsync(inputs, model);
    const held = context.budget?.take(operationType);
    if (held) {
      if (!held.enforced || held.tokens >= promptTokens) return { ...held, maxCompletionTokens: 0 };
      await this.limits.release(held);
    }
    return this.limits.reserve({ userId: context.userId, promptTokens, maxCompletionTokens: 0, microsPerToken: this.pricing.maxMicrosPerToken(model) });
  }

  /** What a call asks for, and what it holds: a call without max_tokens holds AI_RESERVE_COMPLETION_TOKENS. */
  private completionBounds(maxTokens: number | undefined): { maxCompletionTokens: number; reserveCompletionTokens: number } {
    const maxCompletionTokens = maxTokens ?? this.config.AI_MAX_TOKENS;
    return { maxCompletionTokens, reserveCompletionTokens: maxTokens ?? Math.min(maxCompletionTokens, this.config.AI_RESERVE_COMPLETION_TOKENS) };
  }

  /** A limit can leave room for fewer completion tokens than asked: the provider is told so. */
  private withinReservation(request: CompletionRequest, reservation: Reservation | undefined): CompletionRequest {
    if (!reservation || reservation.maxCompletionTokens >= (request.maxTokens ?? Infinity)) return request;
    return { ...request, maxTokens: reservation.maxCompletionTokens };
  }

  /** A call that was not billed: its part goes back to the request's budget (for the fallback), else is released. */
  private async release(reservation: Reservation | undefined, context?: Pick<AiCallContext, 'budget'>): Promise<void> {
    if (!reservation) return;
    if (context?.budget?.giveBack(reservation)) return;
    await this.limits.release(reservation);
  }

  private prepare(request: CompletionRequest): CompletionRequest {
    const prepared = { ...request, maxTokens: request.maxTokens ?? this.config.AI_MAX_TOKENS };
    if (request.maxTokens === undefined) this.defaultedMaxTokens.add(prepared);
    return prepared;
  }

  private modelChain(context: AiCompleteContext): ModelStep[] {
    const primary = context.model ?? this.config.AI_PRIMARY_MODEL;
    const fallback = context.fallbackModel === undefined ? this.config.AI_FALLBACK_MODEL : context.fallbackModel;
    const steps: ModelStep[] = [{ role: 'primary', model: primary }];
    if (fallback && fallback.toLowerCase() !== 'none' && fallback !== primary) steps.push({ role: 'fallback', model: fallback });
    return steps;
  }

  private judge(text: string, finishReason: string | null, request: CompletionRequest, context: AiCompleteContext): Verdict {
    const json = request.responseFormat === 'json_object' ? parseJsonAnswer(text) : undefined;
    if (context.anyAnswer) return { ok: true, ...(json?.ok ? { json: json.value } : {}) };
    if (text.trim().length === 0) return { ok: false, reason: `empty answer (finish reason ${finishReason ?? 'none'})` };
    if (json && !json.ok) {
      return { ok: false, reason: finishReason === 'length' ? `JSON answer truncated at the token limit (${json.error})` : json.error };
    }
    const rejection = context.validate?.(text);
    if (rejection) return { ok: false, reason: rejection };
    return { ok: true, ...(json?.ok ? { json: json.value } : {}) };
  }

  /** Provider figures always win; whatever is missing comes from the tokenizer and is flagged. */
  private async usageOf(usage: ProviderUsage | null, request: CompletionRequest, text: string, model: string): Promise<AiUsage> {
    if (usage) {
      const result: AiUsage = {
        promptTokens: integer(usage.promptTokens)!,
        completionTokens: integer(usage.completionTokens)!,
        totalTokens: integer(usage.totalTokens)!,
        estimated: false,
      };
      if (usage.cachedTokens !== undefined) result.cachedTokens = integer(usage.cachedTokens);
      if (usage.cacheWriteTokens !== undefined) result.cacheWriteTokens = integer(usage.cacheWriteTokens);
      if (usage.reasoningTokens !== undefined) result.reasoningTokens = integer(usage.reasoningTokens);
      return result;
    }
    const promptTokens = await this.tokenizer.countMessagesAsync(request.messages, model);
    const completionTokens = await this.tokenizer.countTextAsync(text, model);
    return { promptTokens, completionTokens, totalTokens: promptTokens + completionTokens, estimated: true };
  }

  private async recordPartial(
    failure: AiProviderCallError,
    step: ModelStep,
    request: CompletionRequest,
    context: AiCallContext,
    log: CallLog,
    reservation?: Reservation,
  ): Promise<void> {
    const partial = failure.partial as PartialCompletion;
    await this.record(
      {
        requestedModel: step.model,
        reportedModel: partial.model,
        usage: await this.usageOf(partial.usage, request, partial.text, step.model),
        costUsd: partial.usage?.costUsd,
        latencyMs: partial.latencyMs,
        success: false,
        errorMessage: `${step.role} model ${step.model} ${failure.detail}`,
      },
      context,
      log,
      reservation,
    );
  }

  private async record(attempt: BilledAttempt, context: AiCallContext, log: CallLog, reservation?: Reservation) {
    const occurredAt = new Date(this.clock.now());
    const priced = this.pricing.price([attempt.reportedModel, attempt.requestedModel], { ...attempt.usage, costUsd: attempt.costUsd }, occurredAt);
    await this.track(context.userId, log, {
      operationType: context.operationType,
      model: attempt.reportedModel,
      provider: this.provider.name,
      promptTokens: attempt.usage.promptTokens,
      completionTokens: attempt.usage.completionTokens,
      ...(attempt.usage.cachedTokens !== undefined ? { cachedTokens: attempt.usage.cachedTokens } : {}),
      ...(attempt.usage.cacheWriteTokens !== undefined ? { cacheWriteTokens: attempt.usage.cacheWriteTokens } : {}),
      ...(attempt.usage.reasoningTokens !== undefined ? { reasoningTokens: attempt.usage.reasoningTokens } : {}),
      costMicros: priced.costMicros,
      costSource: priced.costSource,
      ...priceAttribution(priced),
      estimated: attempt.usage.estimated,
      latencyMs: attempt.latencyMs,
      success: attempt.success,
      ...(attempt.errorMessage ? { errorMessage: attempt.errorMessage } : {}),
      requestId: context.requestId,
      occurredAt,
      ...(context.query !== undefined ? { query: context.query } : {}),
    }, reservation);
    return { costMicros: priced.costMicros, costSource: priced.costSource };
  }

  private async track(userId: string | undefined, log: CallLog, record: UsageRecord, reservation?: Reservation): Promise<void> {
    const embeddingTokens = record.embeddingTokens ?? 0;
    const part: SpentUsage = {
      promptTokens: record.promptTokens,
      completionTokens: record.completionTokens,
      embeddingTokens,
      totalTokens: record.promptTokens + record.completionTokens + embeddingTokens,
      costMicros: record.costMicros,
      estimated: record.estimated ?? false,
    };
    log.spent.promptTokens += part.promptTokens;
    log.spent.completionTokens += part.completionTokens;
    log.spent.embeddingTokens += part.embeddingTokens;
    log.spent.totalTokens += part.totalTokens;
    log.spent.costMicros += part.costMicros;
    log.spent.estimated ||= part.estimated;
    if (!this.config.TRACKING_ENABLED) {
      currentRequestUsage()?.billed(part);
      return;
    }
    if (!userId) {
      await this.ledger.recordUnattributed(record);
      currentRequestUsage()?.billed(part);
      return;
    }
    const tracked = await this.ledger.trackSafely(userId, record, reservation);
    log.tracked.push(tracked);
    currentRequestUsage()?.billed(part, tracked);
  }

  private asCallError(error: unknown): AiProviderCallError {
    if (error instanceof AiProviderCallError) return error;
    // Not a provider failure we know: keep the cause in the log, give the client a generic 502.
    this.logger.error(`Unexpected error from AI provider ${this.provider.name}`, error instanceof Error ? error.stack : String(error));
    return new AiProviderCallError('server_error', 'failed unexpectedly', { cause: error });
  }

  private logFailure(step: ModelStep, failure: AiProviderCallError, context: AiCallContext, repair = false): void {
    // The provider's own message helps operators (e.g. "context length exceeded"); it stays in the log, keys redacted.
    const cause = failure.cause instanceof Error ? `: ${redactSecrets(failure.cause.message).slice(0, 300)}` : '';
    this.logger.warn(
      `${context.operationType}${context.requestId ? ` [${context.requestId}]` : ''}: ${step.role} model ${step.model}${repair ? ' (repair)' : ''} on ${this.provider.name} ${failure.detail}${cause}`,
    );
  }
}
