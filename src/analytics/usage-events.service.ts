import { BadRequestException, ConflictException, Injectable, Logger, OnApplicationBootstrap, OnApplicationShutdown, OnModuleInit } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import { InjectModel } from '@nestjs/mongoose';
import type { Document, Filter } from 'mongodb';
import { Model } from 'mongoose';
import { AlertsService } from '../alerts/alerts.service';
import { Clock } from '../common/clock';
import { withinDeadline } from '../common/deadline';
import { USER_ID_PATTERN } from '../common/user-id';
import { AppConfig } from '../config/app-config';
import { UsageLimitsService } from '../limits/usage-limits.service';
import { MetricsService } from '../metrics/metrics.service';
import { UsageCalendar } from '../token-tracking/usage-calendar';
import type { UsageRecord } from '../token-tracking/usage-record';
import { toUsageEventView, UsageEventView } from './usage-event.mapper';
import { UsageEvent } from './usage-event.schema';
import { EventRepricing, RepricingFilter, RepricingInProgress, RollupTotals, UsageEventWriter } from './usage-event.writer';
import { UsageLogWriter } from './usage-log.writer';

export interface ToolCall {
  toolName: string;
  tier?: string;
  success: boolean;
  executionTimeMs: number;
  userId?: string;
  recordId?: string;
  requestId?: string;
}

export type TrackedUsageRecord = UsageRecord & { recordId: string; occurredAt: Date };

export interface UsageEventMeta {
  /** The user's tier; looked up from the user's plan when absent. */
  tier?: string;
  /** The user's query or prompt; stored truncated unless LOG_QUERIES=false. */
  query?: string;
  cacheHit?: boolean;
  /** Tool calls (POST /api/usage): counted in the tool aggregates too. */
  tool?: { name: string; executionTimeMs: number };
}

export interface UsageEventFilter {
  userId?: string;
  operation?: string;
  model?: string;
  provider?: string;
  tier?: string;
  success?: boolean;
  from?: Date;
  to?: Date;
}

export interface UsageEventPage {
  events: UsageEventView[];
  nextCursor: string | null;
}

export const QUERY_MAX_CHARS = 500;
const TTL_INDEX_NAME = 'timestamp_ttl';
/** Holds only events with pending aggregates (the markers are unset once they are counted), so sweeps stay cheap. */
const PENDING_INDEX_NAME = 'rollups_lease_sparse';
const INDEX_OPTIONS_CONFLICT = 85;

/**
 * Every tracked operation as one event document (collection usage_events), counted once in
 * the daily and monthly aggregates that analytics read, and appended to the JSONL usage log.
 * The writes go through UsageEventWriter, the only writer of usage_events and the aggregates.
 */
@Injectable()
export class UsageEventsService implements OnModuleInit, OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger(UsageEventsService.name);
  private readonly calendar: UsageCalendar;
  private readonly background = new Set<Promise<unknown>>();
  private readonly recording = new Set<Promise<unknown>>();
  private sweepTimer?: NodeJS.Timeout;
  private sweeping?: Promise<number>;

  constructor(
    @InjectModel(UsageEvent.name) private readonly events: Model<UsageEvent>,
    private readonly writer: UsageEventWriter,
    private readonly config: AppConfig,
    private readonly clock: Clock,
    private readonly limits: UsageLimitsService,
    private readonly metrics: MetricsService,
    private readonly alerts: AlertsService,
    private readonly usageLog: UsageLogWriter,
  ) {
    this.calendar = new UsageCalendar(config.USAGE_TIMEZONE);
  }

  async onModuleInit(): Promise<void> {
    await this.ensureRetentionIndex();
    await this.events.collection.createIndex({ rollupsLeaseUntil: 1 }, { name: PENDING_INDEX_NAME, sparse: true });
  }

  onApplicationBootstrap(): void {
    if (this.config.ROLLUP_SWEEP_INTERVAL_MS === 0) return;
    // In the background: a slow or failing sweep never delays or fails startup.
    void this.sweepPendingRollups();
    this.sweepTimer = setInterval(() => void this.sweepPendingRollups(), this.config.ROLLUP_SWEEP_INTERVAL_MS);
    this.sweepTimer.unref();
  }

  async onApplicationShutdown(): Promise<void> {
    clearInterval(this.sweepTimer);
    await this.sweeping;
    // Records still queued for a group commit are written before the connection closes.
    await Promise.allSettled([...this.recording]);
    await this.writer.stop();
    await this.settled();
  }

  /**
   * Completes the aggregates of events whose writer left them pending past its lease (see
   * UsageEventWriter.sweepExpired), with the metrics, usage log line and alerts their write
   * would have had. One sweep at a time: a call during a sweep gets that sweep's count.
   */
  sweepPendingRollups(): Promise<number> {
    this.sweeping ??= this.writer
      .sweepExpired((recorded) => this.afterRecorded(recorded.event, recorded.totals))
      .catch((error: Error) => {
        this.logger.warn(`Sweeping usage events with pending aggregates failed: ${error.message}`);
        return 0;
      })
      .finally(() => (this.sweeping = undefined));
    return this.sweeping;
  }

  /**
   * Records one usage event; resolves once it is stored. Its aggregates are written right
   * after, without delaying the caller (flushed() waits for them), or by the sweep when that
   * fails. Idempotent by record.recordId: a replay of an event already written changes
   * nothing, aggregates included; a replay of one whose aggregates failed completes them.
   * Throws when the event may not be stored (the caller's outbox retries). Alerts, metrics
   * and the JSONL log follow once the event is counted. Concurrent calls share database
   * round trips (see UsageEventWriter).
   */
  record(userId: string | undefined, record: TrackedUsageRecord, meta: UsageEventMeta = {}): Promise<void> {
    return trackIn(this.recording, this.recordOnce(userId, record, meta));
  }

  private async recordOnce(userId: string | undefined, record: TrackedUsageRecord, meta: UsageEventMeta): Promise<void> {
    try {
      const event = this.toEvent(userId, record, meta, meta.tier ?? (await this.tierOf(userId)));
      const { counted } = await this.writer.write(event);
      trackIn(
        this.background,
        counted.then((recorded) => recorded && this.afterRecorded(recorded.event, recorded.totals)),
      );
    } catch (error) {
      this.metrics.countEventWriteFailure();
      throw error;
    }
  }

  /**
   * A tool call (seed 002's trackToolUsage): a `tool_call` event with zero tokens, counted in
   * the tool aggregates. A client's recordId is stored under its owner (`tool/<userId>/<recordId>`,
   * `tool//<recordId>` without a user), so one user's ids never touch another's events. Reusing
   * a recordId with the same call is a replay (nothing new is counted); with a different call it
   * is a 409. The stored event is read back after the write, so a concurrent reuse is caught too.
   */
  async recordToolCall(call: ToolCall): Promise<{ recordId: string; tier: string; replayed: boolean }> {
    if (call.recordId === undefined) {
      const recordId = randomUUID();
      return { recordId, tier: await this.writeToolCall(call, recordId), replayed: false };
    }
    const storedId = `tool/${call.userId ?? ''}/${call.recordId}`;
    const earlier = await this.storedToolCall(storedId);
    if (earlier) return { recordId: call.recordId, tier: this.sameToolCall(earlier, call), replayed: true };
    await this.writeToolCall(call, storedId);
    const stored = await this.storedToolCall(storedId);
    return { recordId: call.recordId, tier: this.sameToolCall(stored, call), replayed: false };
  }

  private async writeToolCall(call: ToolCall, recordId: string): Promise<string> {
    const tier = call.tier ?? (await this.tierOf(call.userId));
    await this.record(
      call.userId,
      {
        recordId,
        occurredAt: new Date(this.clock.now()),
        operationType: 'tool_call',
        model: 'none',
        provider: 'tool',
        promptTokens: 0,
        completionTokens: 0,
        costMicros: 0,
        costSource: 'catalog',
        latencyMs: call.executionTimeMs,
        success: call.success,
        ...(call.success ? {} : { errorMessage: `tool ${call.toolName} failed` }),
        ...(call.requestId ? { requestId: call.requestId } : {}),
      },
      { tier, tool: { name: call.toolName, executionTimeMs: call.executionTimeMs } },
    );
    return tier;
  }

  private async storedToolCall(id: string): Promise<Pick<UsageEvent, 'tool_name' | 'success' | 'response_time' | 'tier' | 'operation_type'> | null> {
    return this.events.collection.findOne(
      { _id: id as never },
      { projection: { _id: 0, tool_name: 1, success: 1, response_time: 1, tier: 1, operation_type: 1 } },
    ) as never;
  }

  /** The stored event's tier when it records this same call; a 409 naming the conflict otherwise. */
  private sameToolCall(stored: Awaited<ReturnType<UsageEventsService['storedToolCall']>>, call: ToolCall): string {
    const same =
      stored !== null &&
      stored.operation_type === 'tool_call' &&
      stored.tool_name === call.toolName &&
      stored.success === call.success &&
      stored.response_time === call.executionTimeMs / 1000 &&
      (call.tier === undefined || stored.tier === call.tier);
    if (!same) throw new ConflictException(`recordId "${call.recordId}" was already used for a different tool call; send a new recordId`);
    return stored.tier;
  }

  /** Models whose calls were recorded without a price since `from` (all retained events when null), most calls first. */
  async unpricedModels(from: Date | null): Promise<{ model: string; calls: number; totalTokens: number; lastSeenAt: string }[]> {
    const rows = await this.events.collection
      .aggregate<{ _id: string; calls: number; totalTokens: number; lastSeenAt: Date }>([
        { $match: { costSource: 'unpriced', ...(from ? { timestamp: { $gte: from } } : {}) } },
        { $group: { _id: '$model_name', calls: { $sum: 1 }, totalTokens: { $sum: '$total_tokens' }, lastSeenAt: { $max: '$timestamp' } } },
        { $sort: { calls: -1, _id: 1 } },
        { $limit: 100 },
      ])
      .toArray();
    return rows.map((row) => ({ model: row._id, calls: row.calls, totalTokens: row.totalTokens, lastSeenAt: new Date(row.lastSeenAt).toISOString() }));
  }

  /** Re-pricing (UsageRepricingService): the writer does the writes, so it stays the only writer of events and aggregates. */
  repricingCandidates(filter: RepricingFilter): AsyncIterable<UsageEvent> {
    return this.writer.repricingCandidates(filter);
  }

  interruptedRepricings(): Promise<RepricingInProgress[]> {
    return this.writer.interruptedRepricings(new Date(this.clock.now()));
  }

  beginRepricing(event: UsageEvent, change: EventRepricing): Promise<RepricingInProgress | null> {
    return this.writer.beginRepricing(event, change, new Date(this.clock.now()));
  }

  correctAggregates(progress: RepricingInProgress): Promise<void> {
    return this.writer.correctAggregates(progress, new Date(this.clock.now()));
  }

  finishRepricing(eventId: string): Promise<void> {
    return this.writer.finishRepricing(eventId);
  }

  /** Newest first, keyset-paginated by (timestamp, _id). */
  async list(filter: UsageEventFilter, limit: number, cursor?: string): Promise<UsageEventPage> {
    const query = toEventQuery(filter);
    const after = cursor ? decodeCursor(cursor) : undefined;
    if (after) {
      query.$or = [{ timestamp: { $lt: after.timestamp } }, { timestamp: after.timestamp, _id: { $lt: after.id as never } }];
    }
    const documents = (await this.events.collection
      .find(query, { projection: { rollupsPending: 0, rollupsLeaseUntil: 0, repricing: 0 } })
      .sort({ timestamp: -1, _id: -1 })
      .limit(limit + 1)
      .toArray()) as unknown as UsageEvent[];
    const page = documents.slice(0, limit);
    const last = page[page.length - 1];
    return {
      events: page.map(toUsageEventView),
      nextCursor: documents.length > limit && last ? encodeCursor(last.timestamp, last._id) : null,
    };
  }

  private toEvent(userId: string | undefined, record: TrackedUsageRecord, meta: UsageEventMeta, tier: string): UsageEvent {
    if (userId !== undefined && !USER_ID_PATTERN.test(userId)) throw new Error(`userId must match ${USER_ID_PATTERN.source}`);
    if (typeof record.recordId !== 'string' || record.recordId.length === 0 || record.recordId.length > 200) {
      throw new Error('usage record recordId must be a non-empty string of at most 200 characters');
    }
    if (!(record.occurredAt instanceof Date) || Number.isNaN(record.occurredAt.getTime())) throw new Error('usage record occurredAt must be a valid Date');
    for (const field of ['promptTokens', 'completionTokens', 'embeddingTokens', 'cachedTokens', 'cacheWriteTokens', 'reasoningTokens', 'costMicros'] as const) {
      const value = record[field] ?? 0;
      if (!Number.isSafeInteger(value) || value < 0) throw new Error(`usage record ${field} must be a non-negative integer (got ${value})`);
    }
    const embeddingTokens = record.embeddingTokens ?? 0;
    const query = this.config.LOG_QUERIES && meta.query ? truncate(meta.query, QUERY_MAX_CHARS) : undefined;
    return {
      _id: record.recordId,
      timestamp: record.occurredAt,
      user_id: userId ?? null,
      operation_type: record.operationType,
      ...(query !== undefined ? { query } : {}),
      model_name: record.model,
      prompt_tokens: record.promptTokens,
      completion_tokens: record.completionTokens,
      embedding_tokens: embeddingTokens,
      total_tokens: record.promptTokens + record.completionTokens + embeddingTokens,
      cost_micros: record.costMicros,
      cost_estimate: record.costMicros / 1e6,
      response_time: Math.max(0, record.latencyMs) / 1000,
      success: record.success,
      error_message: record.errorMessage ?? null,
      provider: record.provider,
      tier,
      costSource: meta.tool ? 'none' : record.costSource,
      ...(record.priceVersion ? { priceVersion: record.priceVersion } : {}),
      ...(record.priceEntry ? { priceEntry: record.priceEntry } : {}),
      ...(record.cachedTokens ? { cachedTokens: record.cachedTokens } : {}),
      ...(record.cacheWriteTokens ? { cacheWriteTokens: record.cacheWriteTokens } : {}),
      ...(record.reasoningTokens ? { reasoningTokens: record.reasoningTokens } : {}),
      estimated: record.estimated ?? false,
      cacheHit: meta.cacheHit ?? false,
      requestId: record.requestId ?? null,
      ...(meta.tool ? { tool_name: meta.tool.name } : {}),
    };
  }

  /** A user's events since `since`, oldest first, as (time, tokens): the rolling window is replayed from them. */
  async usageSince(userId: string, since: Date, timeoutMs: number): Promise<Array<{ at: number; tokens: number }>> {
    const events = await withinDeadline(this.events.db, timeoutMs, 'usage events read', () =>
      this.events.collection
        .find({ user_id: userId, timestamp: { $gte: since } }, { projection: { _id: 0, timestamp: 1, total_tokens: 1 }, sort: { timestamp: 1 } })
        .toArray(),
    );
    return events.map((event) => ({ at: (event.timestamp as Date).getTime(), tokens: Number(event.total_tokens) || 0 }));
  }

  private async tierOf(userId: string | undefined): Promise<string> {
    if (!userId) return 'NONE';
    try {
      return (await this.limits.planOf(userId)).tier;
    } catch {
      return 'UNKNOWN';
    }
  }

  private afterRecorded(event: UsageEvent, totals: RollupTotals): void {
    this.metrics.observeUsage({
      operation: event.operation_type,
      model: event.model_name,
      provider: event.provider,
      promptTokens: event.prompt_tokens,
      completionTokens: event.completion_tokens,
      embeddingTokens: event.embedding_tokens,
      costMicros: event.cost_micros,
      latencyMs: event.response_time * 1000,
      success: event.success,
      costSource: event.costSource,
    });
    this.usageLog.append(toUsageEventView(event));
    const evaluation = this.alerts
      .evaluate({
        recordId: event._id,
        userId: event.user_id ?? undefined,
        operation: event.operation_type,
        model: event.model_name,
        totalTokens: event.total_tokens,
        occurredAt: event.timestamp,
        day: this.calendar.dayKey(event.timestamp),
        month: this.calendar.monthKey(event.timestamp),
        totals: {
          global: { day: totals.day, month: totals.month },
          user: { day: totals.userDay, month: totals.userMonth },
        },
      })
      .catch((error: Error) => this.logger.warn(`Evaluating alerts for usage event ${event._id} failed: ${error.message}`));
    trackIn(this.background, evaluation);
  }

  /** Waits until the events recorded so far are counted and their alerts evaluated (tests and shutdown). */
  async settled(): Promise<void> {
    while (this.background.size > 0) {
      this.writer.hurry();
      await Promise.allSettled([...this.background]);
    }
  }

  /** Waits until the aggregates of the events recorded so far are written: reads of them then see every event this process recorded. */
  flushed(): Promise<void> {
    return this.writer.flushed();
  }

  /** The TTL index follows EVENT_RETENTION_DAYS; an existing index with another expiry is changed in place. */
  private async ensureRetentionIndex(): Promise<void> {
    const expireAfterSeconds = this.config.EVENT_RETENTION_DAYS * 86_400;
    try {
      await this.events.collection.createIndex({ timestamp: 1 }, { name: TTL_INDEX_NAME, expireAfterSeconds });
    } catch (error) {
      if ((error as { code?: unknown }).code !== INDEX_OPTIONS_CONFLICT) throw error;
      try {
        await this.events.db.db!.command({ collMod: this.events.collection.collectionName, index: { name: TTL_INDEX_NAME, expireAfterSeconds } });
        this.logger.log(`usage_events now expire after ${this.config.EVENT_RETENTION_DAYS} days`);
      } catch (collModError) {
        this.logger.warn(`Could not change the usage_events TTL to ${this.config.EVENT_RETENTION_DAYS} days: ${(collModError as Error).message}`);
      }
    }
  }
}

function toEventQuery(filter: UsageEventFilter): Filter<Document> {
  const query: Filter<Document> = {};
  if (filter.userId !== undefined) query.user_id = filter.userId;
  if (filter.operation !== undefined) query.operation_type = filter.operation;
  if (filter.model !== undefined) query.model_name = filter.model;
  if (filter.provider !== undefined) query.provider = filter.provider;
  if (filter.tier !== undefined) query.tier = filter.tier;
  if (filter.success !== undefined) query.success = filter.success;
  if (filter.from || filter.to) {
    query.timestamp = { ...(filter.from ? { $gte: filter.from } : {}), ...(filter.to ? { $lt: filter.to } : {}) };
  }
  return query;
}

function truncate(text: string, max: number): string {
  if (text.length <= max) return text;
  // Cut by code points so a surrogate pair is never split.
  return Array.from(text.slice(0, max * 2)).slice(0, max).join('');
}

function encodeCursor(timestamp: Date, id: string): string {
  return Buffer.from(JSON.stringify([timestamp.getTime(), id]), 'utf8').toString('base64url');
}

function decodeCursor(cursor: string): { timestamp: Date; id: string } {
  try {
    const [time, id] = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as [unknown, unknown];
    if (typeof time === 'number' && Number.isFinite(time) && typeof id === 'string') return { timestamp: new Date(time), id };
  } catch {
    // fall through
  }
  throw new BadRequestException('cursor is not one this endpoint returned');
}

/** Keeps a promise in `pending` until it settles (shutdown awaits the set); returns it unchanged. */
function trackIn<T>(pending: Set<Promise<unknown>>, promise: Promise<T>): Promise<T> {
  pending.add(promise);
  const forget = () => pending.delete(promise);
  void promise.then(forget, forget);
  return promise;
}
