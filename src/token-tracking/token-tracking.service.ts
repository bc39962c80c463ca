import { Injectable, Logger, NotFoundException, OnApplicationShutdown } from '@nestjs/common';
import { InjectModel } from '@nestjs/mongoose';
import { randomUUID } from 'node:crypto';
import type { Document } from 'mongodb';
import { Model } from 'mongoose';
import { AppConfig } from '../config/app-config';
import { Clock } from '../common/clock';
import { USER_ID_PATTERN } from '../common/user-id';
import { TierLimits } from '../limits/tier-limits';
import { LedgerPeriodUsage, PlanSource, Reservation, UsageLimitsService } from '../limits/usage-limits.service';
import { UserTokenUsageResponseDto } from './dto/user-token-usage-response.dto';
import { UsageCalendar } from './usage-calendar';
import { RecentSession, UsageBucket, UserTokenUsage } from './user-token-usage.schema';
import { LedgerTotals, subtractTotals, totalsOf, TrackResult, UsageRecord, ZERO_TOTALS } from './usage-record';
import { toUserTokenUsageResponse } from './user-token-usage.mapper';
import { UsageOutbox } from './outbox/usage-outbox';
import { UsageEventsService } from '../analytics/usage-events.service';
import { MetricsService } from '../metrics/metrics.service';

type TrackedResult = Extract<TrackResult, { trackingEnabled: true }>;

/** Enough applied ids that a replay after any realistic outage still finds its id. */
const APPLIED_RECORD_IDS_KEPT = 1000;
const DUPLICATE_KEY = 11000;

const TOTALS_PROJECTION = {
  _id: 0,
  totalPromptTokens: 1,
  totalCompletionTokens: 1,
  totalEmbeddingTokens: 1,
  totalTokens: 1,
  totalCostMicros: 1,
  requestCount: 1,
  oldestDay: 1,
} as const;

type TotalsDocument = Pick<
  UserTokenUsage,
  | 'totalPromptTokens'
  | 'totalCompletionTokens'
  | 'totalEmbeddingTokens'
  | 'totalTokens'
  | 'totalCostMicros'
  | 'requestCount'
  | 'oldestDay'
>;

export class LedgerWriteError extends Error {}

/** The record or user id itself is wrong: retrying (or queueing for replay) cannot help. */
export class InvalidUsageRecordError extends LedgerWriteError {}

/**
 * The ledger. Every tracked operation of every module lands here as one atomic
 * upsert of the user's single UserTokenUsage document.
 */
@Injectable()
export class TokenTrackingService implements OnApplicationShutdown, PlanSource {
  private readonly logger = new Logger(TokenTrackingService.name);
  private readonly calendar: UsageCalendar;
  private readonly background = new Set<Promise<unknown>>();

  constructor(
    @InjectModel(UserTokenUsage.name) private readonly usage: Model<UserTokenUsage>,
    private readonly config: AppConfig,
    private readonly limits: UsageLimitsService,
    private readonly clock: Clock,
    private readonly outbox: UsageOutbox,
    private readonly events: UsageEventsService,
    private readonly metrics: MetricsService,
  ) {
    this.calendar = new UsageCalendar(config.USAGE_TIMEZONE);
    limits.usePlanSource(this);
  }

  /**
   * Records one usage record and returns the user's totals before and after it.
   * Throws LedgerWriteError when the write fails or exceeds LEDGER_WRITE_TIMEOUT_MS.
   */
  async trackTokenUsage(userId: string, record: UsageRecord): Promise<TrackedResult> {
    assertUserId(userId);
    const normalised = normaliseRecord(record, this.clock);
    const delta = totalsOf(normalised);
    const filter = { userId, appliedRecordIds: { $ne: normalised.recordId } };
    const update = this.buildUpdate(normalised);

    // A concurrent first insert loses the unique-index race with E11000; the retry then
    // finds the document. A second E11000 means this record id was already applied.
    for (let attempt = 0; attempt < 3; attempt += 1) {
      try {
        const after = await this.withTimeout(
          this.usage.collection.findOneAndUpdate(filter, update, {
            upsert: true,
            returnDocument: 'after',
            projection: TOTALS_PROJECTION,
          }),
        );
        if (!after) throw new LedgerWriteError('ledger upsert returned no document');
        this.pruneIfDue(userId, after as unknown as TotalsDocument, normalised.occurredAt);
        const afterTotals = toLedgerTotals(after as unknown as TotalsDocument);
        return { trackingEnabled: true, before: subtractTotals(afterTotals, delta), after: afterTotals, delta };
      } catch (error) {
        if (!isDuplicateKey(error)) throw asLedgerError(error);
        if (attempt === 0) continue;
        const current = await this.withTimeout(this.readTotals(userId));
        if (current) return { trackingEnabled: true, before: current, after: current, delta: { ...ZERO_TOTALS } };
      }
    }
    throw new LedgerWriteError(`could not upsert usage for user ${userId}`);
  }

  /**
   * The live path for every tracked operation: the ledger write and the rolling-window
   * update (which also settles the call's limit reservation) run side by side. A ledger
   * failure is reported in the result instead of thrown, after the record is durably queued
   * in the outbox for replay.
   */
  async trackSafely(userId: string, input: UsageRecord, reservation?: Reservation): Promise<TrackResult> {
    // Identity fixed before the first attempt: a write that landed but timed out is then
    // recognised by its record id when the outbox replays it, and counted once.
    const record = { ...input, recordId: input.recordId ?? randomUUID(), occurredAt: input.occurredAt ?? new Date(this.clock.now()) };
    const totals = totalsOf(record);
    // Ledger, usage event and rolling window are written side by side. A failed ledger or
    // event write queues the record; replay re-applies both, each idempotent by recordId.
    const [ledger, eventError, window] = await Promise.all([
      this.trackTokenUsage(userId, record).then(
        (result): TrackResult => result,
        (error: unknown): Promise<TrackResult> => this.queueFailedWrite(userId, record, error),
      ),
      this.events.record(userId, record, { query: record.query }).then(
        () => undefined,
        (error: unknown) => error,
      ),
      this.limits.settle(userId, totals.totalTokens, totals.costMicros, reservation),
    ]);
    if (eventError !== undefined && ledger.trackingEnabled) {
      this.logger.warn(`Usage event for user ${userId} (${record.operationType}) not written: ${String(eventError)}; queued for replay`);
      await this.queueFailedWrite(userId, record, eventError);
    }
    return { ...ledger, window };
  }

  /** The ledger record and its usage event, both idempotent by recordId: how the outbox replays. */
  async applyRecord(userId: string, record: UsageRecord & { recordId: string; occurredAt: Date }): Promise<TrackedResult> {
    const result = await this.trackTokenUsage(userId, record);
    await this.events.record(userId, record, { query: record.query });
    return result;
  }

  async planOf(userId: string): Promise<{ tier?: string | null; limits?: TierLimits | null }> {
    const document = await this.withTimeout(
      this.usage.collection.findOne({ userId }, { projection: { _id: 0, tier: 1, limits: 1 } }),
      'plan read',
    );
    return { tier: (document?.tier as string | undefined) ?? null, limits: (document?.limits as TierLimits | undefined) ?? null };
  }

  async periodUsage(userId: string, day: string, month: string): Promise<LedgerPeriodUsage> {
    const document = await this.usage.collection.findOne(
      { userId },
      { projection: { _id: 0, [`dailyUsage.${day}.totalTokens`]: 1, [`monthlyUsage.${month}.costMicros`]: 1 } },
    );
    return {
      dayTokens: (document?.dailyUsage as Record<string, UsageBucket> | undefined)?.[day]?.totalTokens ?? 0,
      monthCostMicros: (document?.monthlyUsage as Record<string, UsageBucket> | undefined)?.[month]?.costMicros ?? 0,
    };
  }

  /** Sets a user's tier (creating the user's document if needed) and returns the effective plan. */
  async setTier(userId: string, tier: string): Promise<void> {
    assertUserId(userId);
    await this.usage.collection.updateOne({ userId }, { $set: { tier } }, { upsert: true });
    this.limits.forgetPlan(userId);
  }

  /** Replaces a user's limit overrides; an empty object removes them. */
  async setLimits(userId: string, limits: TierLimits): Promise<void> {
    assertUserId(userId);
    const update = Object.keys(limits).length === 0 ? { $unset: { limits: '' } } : { $set: { limits } };
    await this.usage.collection.updateOne({ userId }, update, { upsert: true });
    this.limits.forgetPlan(userId);
  }

  async getUserTokenUsage(userId: string): Promise<UserTokenUsageResponseDto> {
    assertUserId(userId);
    const document = await this.usage.findOne({ userId }, { appliedRecordIds: 0 }).lean<UserTokenUsage>().exec();
    if (!document) throw new NotFoundException(`No token usage recorded for user "${userId}"`);
    return toUserTokenUsageResponse(document);
  }

  async onApplicationShutdown(): Promise<void> {
    await Promise.allSettled([...this.background]);
  }

  private buildUpdate(record: Required<Pick<UsageRecord, 'recordId' | 'occurredAt'>> & UsageRecord): Document {
    const totals = totalsOf(record);
    const day = this.calendar.dayKey(record.occurredAt);
    const month = this.calendar.monthKey(record.occurredAt);
    const bucket = (prefix: string) => ({
      [`${prefix}.promptTokens`]: totals.promptTokens,
      [`${prefix}.completionTokens`]: totals.completionTokens,
      [`${prefix}.embeddingTokens`]: totals.embeddingTokens,
      [`${prefix}.totalTokens`]: totals.totalTokens,
      [`${prefix}.costMicros`]: totals.costMicros,
      [`${prefix}.requestCount`]: 1,
      [`${prefix}.operations.${record.operationType}`]: 1,
    });
    const session: RecentSession = {
      recordId: record.recordId,
      operationType: record.operationType,
      model: record.model,
      provider: record.provider,
      promptTokens: totals.promptTokens,
      completionTokens: totals.completionTokens,
      embeddingTokens: totals.embeddingTokens,
      totalTokens: totals.totalTokens,
      costMicros: totals.costMicros,
      costSource: record.costSource,
      estimated: record.estimated ?? false,
      latencyMs: record.latencyMs,
      success: record.success,
      ...(record.errorMessage ? { errorMessage: record.errorMessage } : {}),
      ...(record.requestId ? { requestId: record.requestId } : {}),
      timestamp: record.occurredAt,
    };
    return {
      $inc: {
        totalPromptTokens: totals.promptTokens,
        totalCompletionTokens: totals.completionTokens,
        totalEmbeddingTokens: totals.embeddingTokens,
        totalTokens: totals.totalTokens,
        totalCostMicros: totals.costMicros,
        requestCount: 1,
        ...bucket(`dailyUsage.${day}`),
        ...bucket(`monthlyUsage.${month}`),
      },
      // $min/$max rather than $setOnInsert/$set: replayed records may arrive out of order.
      $min: { firstRequestAt: record.occurredAt, oldestDay: day },
      $max: { lastRequestAt: record.occurredAt },
      $push: {
        recentSessions: { $each: [session], $slice: -this.config.RECENT_SESSIONS_LIMIT },
        appliedRecordIds: { $each: [record.recordId], $slice: -APPLIED_RECORD_IDS_KEPT },
      },
    };
  }

  private pruneIfDue(userId: string, after: TotalsDocument, now: Date): void {
    const cutoff = this.calendar.retentionCutoffDay(now, this.config.DAILY_RETENTION_DAYS);
    if (!after.oldestDay || after.oldestDay >= cutoff) return;
    const pruning = this.pruneDailyBuckets(userId, cutoff).catch((error: unknown) =>
      this.logger.warn(`Pruning daily buckets for ${userId} failed: ${String(error)}`),
    );
    this.background.add(pruning);
    void pruning.finally(() => this.background.delete(pruning));
  }

  private async pruneDailyBuckets(userId: string, cutoff: string): Promise<void> {
    const document = await this.usage.collection.findOne({ userId }, { projection: { dailyUsage: 1 } });
    const days = Object.keys((document?.dailyUsage as Record<string, unknown>) ?? {});
    const expired = days.filter((day) => day < cutoff);
    if (expired.length === 0) return;
    const oldestKept = days.filter((day) => day >= cutoff).sort()[0];
    const unset = Object.fromEntries(expired.map((day) => [`dailyUsage.${day}`, '']));
    await this.usage.collection.updateOne(
      { userId },
      oldestKept ? { $unset: unset, $set: { oldestDay: oldestKept } } : { $unset: { ...unset, oldestDay: '' } },
    );
  }

  private async readTotals(userId: string): Promise<LedgerTotals | undefined> {
    const document = await this.usage.collection.findOne({ userId }, { projection: TOTALS_PROJECTION });
    return document ? toLedgerTotals(document as unknown as TotalsDocument) : undefined;
  }

  /** Durably queues a failed write for replay (unless the record itself is invalid) before the caller is answered. */
  private async queueFailedWrite(userId: string, record: UsageRecord & { recordId: string; occurredAt: Date }, error: unknown): Promise<TrackResult> {
    const totals = totalsOf(record);
    const message = error instanceof Error ? error.message : String(error);
    this.metrics.countLedgerWriteFailure();
    if (error instanceof InvalidUsageRecordError) {
      this.logger.error(`Usage record for user ${userId} (${record.operationType}) refused: ${message}`);
      return { trackingEnabled: false, delta: totals, error: message };
    }
    try {
      await this.outbox.append({ userId, record, queuedAt: new Date() });
    } catch (outboxError) {
      this.logger.error(
        `Ledger write failed for user ${userId} (${record.operationType}): ${message}; the outbox append failed too ` +
          `(${outboxError instanceof Error ? outboxError.message : String(outboxError)}): record ${record.recordId} of ${totals.totalTokens} tokens is LOST`,
      );
      return { trackingEnabled: false, delta: totals, error: message, queued: false };
    }
    this.logger.warn(`Ledger write failed for user ${userId} (${record.operationType}): ${message}; record ${record.recordId} queued in the outbox`);
    return { trackingEnabled: false, delta: totals, error: message, queued: true };
  }

  private withTimeout<T>(operation: Promise<T>, what = 'ledger write'): Promise<T> {
    const ms = this.config.LEDGER_WRITE_TIMEOUT_MS;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new LedgerWriteError(`${what} timed out after ${ms} ms`)), ms);
    });
    return Promise.race([operation, timeout]).finally(() => clearTimeout(timer));
  }
}

function assertUserId(userId: string): void {
  if (typeof userId !== 'string' || !USER_ID_PATTERN.test(userId)) {
    throw new InvalidUsageRecordError(`userId must match ${USER_ID_PATTERN.source}`);
  }
}

function normaliseRecord(record: UsageRecord, clock: Clock): UsageRecord & { recordId: string; occurredAt: Date } {
  for (const field of ['promptTokens', 'completionTokens', 'embeddingTokens', 'cachedTokens', 'reasoningTokens', 'costMicros'] as const) {
    const value = record[field];
    if (value !== undefined && !(Number.isSafeInteger(value) && value >= 0)) {
      throw new InvalidUsageRecordError(`usage record ${field} must be a non-negative integer (got ${value})`);
    }
  }
  return { ...record, recordId: record.recordId ?? randomUUID(), occurredAt: record.occurredAt ?? new Date(clock.now()) };
}

function toLedgerTotals(document: TotalsDocument): LedgerTotals {
  return {
    promptTokens: document.totalPromptTokens ?? 0,
    completionTokens: document.totalCompletionTokens ?? 0,
    embeddingTokens: document.totalEmbeddingTokens ?? 0,
    totalTokens: document.totalTokens ?? 0,
    costMicros: document.totalCostMicros ?? 0,
    requestCount: document.requestCount ?? 0,
  };
}

function isDuplicateKey(error: unknown): boolean {
  return typeof error === 'object' && error !== null && (error as { code?: unknown }).code === DUPLICATE_KEY;
}

function asLedgerError(error: unknown): LedgerWriteError {
  if (error instanceof LedgerWriteError) return error;
  return new LedgerWriteError(error instanceof Error ? error.message : String(error));
}
