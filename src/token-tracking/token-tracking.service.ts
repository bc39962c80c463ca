import { Injectable, Logger, NotFoundException, OnApplicationShutdown } from '@nestjs/common';
import { InjectModel } from '@nestjs/mongoose';
import { randomUUID } from 'node:crypto';
import { Document, MongoBulkWriteError } from 'mongodb';
import { Model } from 'mongoose';
import { AppConfig } from '../config/app-config';
import { Clock } from '../common/clock';
import { isUnanswering, markUnanswering } from '../common/deadline';
import { GroupCommit } from '../common/group-commit';
import { USER_ID_PATTERN } from '../common/user-id';
import { TierLimits } from '../limits/tier-limits';
import { LedgerPeriodUsage, PlanSource, Reservation, StoredPlan, UsageLimitsService, UsageMoment } from '../limits/usage-limits.service';
import { UserTokenUsageResponseDto } from './dto/user-token-usage-response.dto';
import { APPLIED_RECORD_IDS_KEPT, LedgerRecord, ledgerUpdate, toLedgerTotals, TOTALS_PROJECTION, TotalsDocument } from './ledger-update';
import { UsageCalendar } from './usage-calendar';
import { UsageBucket, UserTokenUsage } from './user-token-usage.schema';
import { LedgerTotals, subtractTotals, totalsOf, TrackResult, UsageRecord, ZERO_TOTALS } from './usage-record';
import { toUserTokenUsageResponse } from './user-token-usage.mapper';
import { UsageOutbox } from './outbox/usage-outbox';
import { UsageEventsService } from '../analytics/usage-events.service';
import { MetricsService } from '../metrics/metrics.service';

type TrackedResult = Extract<TrackResult, { trackingEnabled: true }>;

const DUPLICATE_KEY = 11000;
/** Records per ledger commit: one update statement per user, far below MongoDB's batch limits. */
const MAX_RECORDS_PER_COMMIT = 500;

interface PendingRecord {
  userId: string;
  record: LedgerRecord;
}

/** A user's records in one commit, in submission order, with their places in the batch. */
interface UserBlock {
  userId: string;
  records: LedgerRecord[];
  indexes: number[];
}

interface SessionDelta {
  recordId: string;
  promptTokens?: number;
  completionTokens?: number;
  embeddingTokens?: number;
  totalTokens?: number;
  costMicros?: number;
}

/** One call's cost change, as UsageRepricingService applies it to the ledger. */
export interface LedgerCostCorrection {
  /** Unique per change (record, old cost, new cost): applying it twice moves the ledger once. */
  correctionId: string;
  recordId: string;
  occurredAt: Date;
  deltaMicros: number;
  costSource: string;
  priceVersion?: string;
  priceEntry?: string;
}

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
  private readonly commits = new GroupCommit<PendingRecord, TrackedResult>((batch) => this.commit(batch), { maxBatch: MAX_RECORDS_PER_COMMIT });

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
   *
   * Records arriving while a commit runs go together in the next one (group commit): one
   * unordered bulk update with one atomic upsert per user, then one read of those users'
   * totals; a commit of one user's records is a single findOneAndUpdate. Totals before and after each record are exact: a user's records are applied in
   * order by one statement, and writes of other processes that landed in between are found
   * by record id in the document's recent sessions and taken back out.
   */
  async trackTokenUsage(userId: string, record: UsageRecord): Promise<TrackedResult> {
    assertUserId(userId);
    return this.commits.submit({ userId, record: normaliseRecord(record, this.clock) });
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
    // A write that just waited out its whole timeout means MongoDB is down or frozen: for a moment
    // records go straight to the outbox (replayed, idempotent) instead of each waiting again.
    const skip = isUnanswering(this.usage.db);
    const [ledger, eventError, window] = await Promise.all([
      skip
        ? this.queueFailedWrite(userId, record, new LedgerWriteError('MongoDB is not answering'))
        : this.trackTokenUsage(userId, record).then(
            (result): TrackResult => result,
            (error: unknown): Promise<TrackResult> => this.queueFailedWrite(userId, record, error),
          ),
      // A frozen MongoDB never answers: the event is queued for replay (idempotent) instead of holding the request.
      skip
        ? undefined
        : this.withTimeout(this.events.record(userId, record, { query: record.query }), 'usage event write').then(
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

  /**
   * A provider call made for no user: counted system-wide (usage event, aggregates, metrics,
   * JSONL log) as unattributed, never in a user's ledger. A failed write is logged, not thrown:
   * the caller's answer does not depend on it.
   */
  async recordUnattributed(input: UsageRecord): Promise<void> {
    const record = { ...input, recordId: input.recordId ?? randomUUID(), occurredAt: input.occurredAt ?? new Date(this.clock.now()) };
    try {
      await this.events.record(undefined, record, { query: record.query });
    } catch (error) {
      this.logger.warn(`Usage event of an unattributed ${record.operationType} call not written: ${String(error)}`);
    }
  }

  /** The ledger record and its usage event, both idempotent by recordId: how the outbox replays. */
  async applyRecord(userId: string, record: UsageRecord & { recordId: string; occurredAt: Date }): Promise<TrackedResult> {
    const result = await this.trackTokenUsage(userId, record);
    // Bounded like the live path: an event write that never answers must not hold the replay pass forever.
    await this.withTimeout(this.events.record(userId, record, { query: record.query }), 'usage event write');
    return result;
  }

  /**
   * Moves one recorded call's cost by `deltaMicros` (a re-pricing after a price list fix): the
   * user's total, the call's day and month buckets, and its recent session if still listed,
   * which also takes the new price attribution. Idempotent by `correctionId`, kept with the
   * applied record ids. A day bucket already pruned is not brought back.
   */
  async correctRecordCost(userId: string, correction: LedgerCostCorrection): Promise<'applied' | 'already-applied' | 'no-ledger'> {
    assertUserId(userId);
    const day = this.calendar.dayKey(correction.occurredAt);
    const inc: Record<string, number> = {
      totalCostMicros: correction.deltaMicros,
      [`monthlyUsage.${day.slice(0, 7)}.costMicros`]: correction.deltaMicros,
      'recentSessions.$[session].costMicros': correction.deltaMicros,
    };
    if (day >= this.calendar.retentionCutoffDay(new Date(this.clock.now()), this.config.DAILY_RETENTION_DAYS)) {
      inc[`dailyUsage.${day}.costMicros`] = correction.deltaMicros;
    }
    const set: Record<string, string> = { 'recentSessions.$[session].costSource': correction.costSource };
    const unset: Record<string, ''> = {};
    for (const field of ['priceVersion', 'priceEntry'] as const) {
      if (correction[field] !== undefined) set[`recentSessions.$[session].${field}`] = correction[field]!;
      else unset[`recentSessions.$[session].${field}`] = '';
    }
    const update: Document = {
      $inc: inc,
      $set: set,
      ...(Object.keys(unset).length > 0 ? { $unset: unset } : {}),
      $push: { appliedRecordIds: { $each: [correction.correctionId], $slice: -APPLIED_RECORD_IDS_KEPT } },
    };
    const result = await this.withTimeout(
      this.usage.collection.updateOne({ userId, appliedRecordIds: { $nin: [correction.correctionId] } }, update, {
        arrayFilters: [{ 'session.recordId': correction.recordId }],
      }),
    );
    if (result.modifiedCount === 1) return 'applied';
    const exists = await this.usage.collection.countDocuments({ userId }, { limit: 1 });
    return exists > 0 ? 'already-applied' : 'no-ledger';
  }

  async planOf(userId: string): Promise<StoredPlan> {
    const document = await this.withTimeout(
      this.usage.collection.findOne({ userId }, { projection: { _id: 0, tier: 1, limits: 1, planVersion: 1, windowResetAt: 1 } }),
      'plan read',
      this.config.MONGODB_READ_TIMEOUT_MS,
    );
    return {
      tier: (document?.tier as string | undefined) ?? null,
      limits: (document?.limits as TierLimits | undefined) ?? null,
      version: (document?.planVersion as number | undefined) ?? 0,
      windowResetAt: (document?.windowResetAt as Date | undefined) ?? null,
    };
  }

  /** Remembers an admin's clearing of the user's rolling window, so a replay after Redis lost its data honours it. */
  async recordWindowReset(userId: string, at: Date): Promise<void> {
    await this.withTimeout(this.usage.collection.updateOne({ userId }, { $set: { windowResetAt: at } }), 'window reset write', this.config.MONGODB_READ_TIMEOUT_MS);
  }

  async periodUsage(userId: string, day: string, month: string): Promise<LedgerPeriodUsage> {
    const document = await this.withTimeout(
      this.usage.collection.findOne(
        { userId },
        { projection: { _id: 0, [`dailyUsage.${day}.totalTokens`]: 1, [`monthlyUsage.${month}.costMicros`]: 1 } },
      ),
      'period usage read',
      this.config.MONGODB_READ_TIMEOUT_MS,
    );
    return {
      dayTokens: (document?.dailyUsage as Record<string, UsageBucket> | undefined)?.[day]?.totalTokens ?? 0,
      monthCostMicros: (document?.monthlyUsage as Record<string, UsageBucket> | undefined)?.[month]?.costMicros ?? 0,
    };
  }

  /** The user's tracked calls since `since`, oldest first (from the usage events), to replay the rolling window. */
  usageSince(userId: string, since: Date): Promise<UsageMoment[]> {
    return this.events.usageSince(userId, since, this.config.MONGODB_READ_TIMEOUT_MS);
  }

  /** Sets a user's tier (creating the user's document if needed); every instance applies it to its next request. */
  async setTier(userId: string, tier: string): Promise<void> {
    assertUserId(userId);
    await this.usage.collection.updateOne({ userId }, { $set: { tier }, $inc: { planVersion: 1 } }, { upsert: true });
    await this.limits.planChanged(userId);
  }

  /** Replaces a user's limit overrides; an empty object removes them. */
  async setLimits(userId: string, limits: TierLimits): Promise<void> {
    assertUserId(userId);
    const update = Object.keys(limits).length === 0 ? { $unset: { limits: '' }, $inc: { planVersion: 1 } } : { $set: { limits }, $inc: { planVersion: 1 } };
    await this.usage.collection.updateOne({ userId }, update, { upsert: true });
    await this.limits.planChanged(userId);
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

  private async commit(batch: PendingRecord[]): Promise<PromiseSettledResult<TrackedResult>[]> {
    const outcomes: PromiseSettledResult<TrackedResult>[] = new Array(batch.length);
    const { blocks, repeats } = blocksOf(batch);
    if (blocks.length === 1 && repeats.length === 0) return this.commitBlock(blocks[0]);
    const retried = new Set<UserBlock>();
    const failed = new Map<UserBlock, unknown>();
    try {
      await this.withTimeout(
        this.usage.collection.bulkWrite(
          blocks.map((block) => ({
            updateOne: {
              filter: { userId: block.userId, appliedRecordIds: { $nin: block.records.map((record) => record.recordId) } },
              update: ledgerUpdate(block.records, this.calendar, this.config.RECENT_SESSIONS_LIMIT),
              upsert: true,
            },
          })),
          { ordered: false },
        ),
      );
    } catch (error) {
      // Exact per-user outcomes only when the server answered for every statement; otherwise
      // (no reply, a write concern error) the whole batch fails and the outbox replays it.
      if (!(error instanceof MongoBulkWriteError) || error.result.getWriteConcernError()) throw asLedgerError(error);
      const writeErrors = error.result.getWriteErrors();
      if (error.result.upsertedCount + error.result.matchedCount + writeErrors.length !== blocks.length) throw asLedgerError(error);
      for (const writeError of writeErrors) {
        const block = blocks[writeError.index];
        // A record already applied (a replay), or a first insert that lost the race for the
        // user's document: the records are tried again one by one, as a lone write handles both.
        if (writeError.code === DUPLICATE_KEY) retried.add(block);
        else failed.set(block, new LedgerWriteError(writeError.errmsg ?? `ledger write failed with code ${writeError.code}`));
      }
    }
    const applied = blocks.filter((block) => !failed.has(block) && !retried.has(block));
    const documents = applied.length === 0 ? [] : await this.withTimeout(
      this.usage.collection
        .find({ userId: { $in: applied.map((block) => block.userId) } }, { projection: { ...TOTALS_PROJECTION, userId: 1, appliedRecordIds: { $slice: -1 } } })
        .toArray(),
      'ledger read',
    );
    const byUser = new Map(documents.map((document) => [document.userId as string, document]));
    await Promise.all(
      applied.map(async (block) => {
        const document = byUser.get(block.userId);
        if (!document) {
          failed.set(block, new LedgerWriteError(`ledger document of user ${block.userId} missing after its upsert`));
          return;
        }
        const last = block.records.at(-1)!;
        const endTotals = (document.appliedRecordIds as string[] | undefined)?.[0] === last.recordId
          ? toLedgerTotals(document as TotalsDocument)
          : await this.totalsAfter(block.userId, last.recordId);
        this.pruneIfDue(block.userId, document as TotalsDocument, last.occurredAt);
        resultsBackFrom(endTotals, block.records).forEach((value, i) => (outcomes[block.indexes[i]] = { status: 'fulfilled', value }));
      }),
    );
    for (const [block, reason] of failed) for (const index of block.indexes) outcomes[index] = { status: 'rejected', reason };
    const alone = [...[...retried].flatMap((block) => block.indexes), ...repeats].sort((x, y) => x - y);
    for (const index of alone) outcomes[index] = await this.settleAlone(batch[index].userId, batch[index].record);
    return outcomes;
  }

  /**
   * A commit holding one user's records (all a quiet service ever commits): one
   * findOneAndUpdate, which answers with the totals right after them, so one round trip
   * instead of a bulk write and a read. A lost first-insert race or a replayed record id
   * (E11000) goes record by record, as in a bulk commit.
   */
  private async commitBlock(block: UserBlock): Promise<PromiseSettledResult<TrackedResult>[]> {
    try {
      return (await this.upsertRecords(block.userId, block.records)).map((value) => ({ status: 'fulfilled', value }));
    } catch (error) {
      if (!isDuplicateKey(error)) throw asLedgerError(error);
      const outcomes: PromiseSettledResult<TrackedResult>[] = [];
      for (const record of block.records) outcomes.push(await this.settleAlone(block.userId, record));
      return outcomes;
    }
  }

  /** A user's records as one findOneAndUpdate, with each record's before/after from the totals it returns. */
  private async upsertRecords(userId: string, records: LedgerRecord[]): Promise<TrackedResult[]> {
    const after = await this.withTimeout(
      this.usage.collection.findOneAndUpdate(
        { userId, appliedRecordIds: { $nin: records.map((record) => record.recordId) } },
        ledgerUpdate(records, this.calendar, this.config.RECENT_SESSIONS_LIMIT),
        { upsert: true, returnDocument: 'after', projection: TOTALS_PROJECTION },
      ),
    );
    if (!after) throw new LedgerWriteError('ledger upsert returned no document');
    this.pruneIfDue(userId, after as TotalsDocument, records.at(-1)!.occurredAt);
    return resultsBackFrom(toLedgerTotals(after as TotalsDocument), records);
  }

  /**
   * The user's totals right after a record, when writes from elsewhere landed after it: those
   * writes are the sessions behind the record's own, taken back out. Without the record among
   * the recent sessions (more writes than RECENT_SESSIONS_LIMIT landed in between) the totals
   * as read are the best figure left.
   */
  private async totalsAfter(userId: string, recordId: string): Promise<LedgerTotals> {
    const document = await this.withTimeout(
      this.usage.collection.findOne(
        { userId },
        {
          projection: {
            ...TOTALS_PROJECTION,
            'recentSessions.recordId': 1,
            'recentSessions.promptTokens': 1,
            'recentSessions.completionTokens': 1,
            'recentSessions.embeddingTokens': 1,
            'recentSessions.totalTokens': 1,
            'recentSessions.costMicros': 1,
          },
        },
      ),
      'ledger read',
    );
    if (!document) throw new LedgerWriteError(`ledger document of user ${userId} missing after its upsert`);
    let totals = toLedgerTotals(document as TotalsDocument);
    const sessions = (document.recentSessions as SessionDelta[] | undefined) ?? [];
    const own = sessions.map((session) => session.recordId).lastIndexOf(recordId);
    if (own < 0) return totals;
    for (const later of sessions.slice(own + 1)) {
      const embeddingTokens = later.embeddingTokens ?? 0;
      totals = subtractTotals(totals, {
        promptTokens: later.promptTokens ?? 0,
        completionTokens: later.completionTokens ?? 0,
        embeddingTokens,
        totalTokens: later.totalTokens ?? 0,
        costMicros: later.costMicros ?? 0,
        requestCount: 1,
      });
    }
    return totals;
  }

  private settleAlone(userId: string, record: LedgerRecord): Promise<PromiseSettledResult<TrackedResult>> {
    return this.writeAlone(userId, record).then(
      (value): PromiseSettledResult<TrackedResult> => ({ status: 'fulfilled', value }),
      (reason: unknown): PromiseSettledResult<TrackedResult> => ({ status: 'rejected', reason: asLedgerError(reason) }),
    );
  }

  /** One record as one findOneAndUpdate: the path for replays and lost first-insert races. */
  private async writeAlone(userId: string, record: LedgerRecord): Promise<TrackedResult> {
    // A concurrent first insert loses the unique-index race with E11000; the retry then
    // finds the document. A second E11000 means this record id was already applied.
    for (let attempt = 0; attempt < 3; attempt += 1) {
      try {
        const [result] = await this.upsertRecords(userId, [record]);
        return result;
      } catch (error) {
        if (!isDuplicateKey(error)) throw asLedgerError(error);
        if (attempt === 0) continue;
        const current = await this.withTimeout(this.readTotals(userId));
        if (current) return { trackingEnabled: true, before: current, after: current, delta: { ...ZERO_TOTALS } };
      }
    }
    throw new LedgerWriteError(`could not upsert usage for user ${userId}`);
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

  private withTimeout<T>(operation: Promise<T>, what = 'ledger write', ms = this.config.LEDGER_WRITE_TIMEOUT_MS): Promise<T> {
    if (ms < this.config.LEDGER_WRITE_TIMEOUT_MS && isUnanswering(this.usage.db)) {
      operation.catch(() => undefined);
      return Promise.reject(new LedgerWriteError(`${what} skipped: MongoDB is not answering`));
    }
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        if (ms >= this.config.LEDGER_WRITE_TIMEOUT_MS) markUnanswering(this.usage.db);
        reject(new LedgerWriteError(`${what} timed out after ${ms} ms`));
      }, ms);
    });
    return Promise.race([operation, timeout]).finally(() => clearTimeout(timer));
  }
}

function assertUserId(userId: string): void {
  if (typeof userId !== 'string' || !USER_ID_PATTERN.test(userId)) {
    throw new InvalidUsageRecordError(`userId must match ${USER_ID_PATTERN.source}`);
  }
}

function normaliseRecord(record: UsageRecord, clock: Clock): LedgerRecord {
  for (const field of ['promptTokens', 'completionTokens', 'embeddingTokens', 'cachedTokens', 'cacheWriteTokens', 'reasoningTokens', 'costMicros'] as const) {
    const value = record[field];
    if (value !== undefined && !(Number.isSafeInteger(value) && value >= 0)) {
      throw new InvalidUsageRecordError(`usage record ${field} must be a non-negative integer (got ${value})`);
    }
  }
  return { ...record, recordId: record.recordId ?? randomUUID(), occurredAt: record.occurredAt ?? new Date(clock.now()) };
}

/**
 * The batch grouped by user, in order of first appearance. A record id met twice goes
 * after the commit on its own (where it is found applied) instead of into its user's block.
 */
function blocksOf(batch: PendingRecord[]): { blocks: UserBlock[]; repeats: number[] } {
  const byUser = new Map<string, UserBlock>();
  const seen = new Set<string>();
  const repeats: number[] = [];
  batch.forEach(({ userId, record }, index) => {
    const key = `${userId}\u0000${record.recordId}`;
    if (seen.has(key)) {
      repeats.push(index);
      return;
    }
    seen.add(key);
    const block = byUser.get(userId) ?? { userId, records: [], indexes: [] };
    block.records.push(record);
    block.indexes.push(index);
    byUser.set(userId, block);
  });
  return { blocks: [...byUser.values()], repeats };
}

/** Each record's before/after, walking back from the totals after the last of them. */
function resultsBackFrom(endTotals: LedgerTotals, records: LedgerRecord[]): TrackedResult[] {
  const results: TrackedResult[] = new Array(records.length);
  let after = endTotals;
  for (let i = records.length - 1; i >= 0; i -= 1) {
    const delta = totalsOf(records[i]);
    const before = subtractTotals(after, delta);
    results[i] = { trackingEnabled: true, before, after, delta };
    after = before;
  }
  return results;
}

function isDuplicateKey(error: unknown): boolean {
  return typeof error === 'object' && error !== null && (error as { code?: unknown }).code === DUPLICATE_KEY;
}

function asLedgerError(error: unknown): LedgerWriteError {
  if (error instanceof LedgerWriteError) return error;
  return new LedgerWriteError(error instanceof Error ? error.message : String(error));
}
