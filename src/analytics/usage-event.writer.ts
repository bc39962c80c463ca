import { Injectable, Logger } from '@nestjs/common';
import { InjectModel } from '@nestjs/mongoose';
import {
  AnyBulkWriteOperation,
  BulkWriteResult,
  Document,
  MongoBulkWriteError,
  MongoNotConnectedError,
  MongoServerSelectionError,
  MongoTopologyClosedError,
} from 'mongodb';
import { Model } from 'mongoose';
import { AlertsService } from '../alerts/alerts.service';
import { Clock } from '../common/clock';
import { AppConfig } from '../config/app-config';
import { UsageCalendar } from '../token-tracking/usage-calendar';
import { GroupCommit } from '../common/group-commit';
import { UsageEvent } from './usage-event.schema';
import { costCorrectionIncrements, RollupInput, systemRollupId, systemRollupIncrements, userRollupId, userRollupIncrements } from './usage-rollup';
import { UsageRollup, UserUsageRollup } from './usage-rollup.schema';

/** The aggregates one event is counted in; each is applied at most once per event. */
const ROLLUP_TARGETS = ['day', 'month', 'userDay', 'userMonth'] as const;
type RollupTarget = (typeof ROLLUP_TARGETS)[number];

type PeriodTotals = { totalTokens: number; costMicros: number };
export type RollupTotals = Partial<Record<RollupTarget, PeriodTotals>>;

/** An event this write counted, with the totals of its aggregates after it (empty unless alerts need them). */
export interface RecordedEvent {
  event: UsageEvent;
  totals: RollupTotals;
}

/**
 * A stored event. `counted` settles once its aggregates are written: with the event, or
 * undefined when there was nothing left to count or the aggregates were left to the sweep
 * (it never rejects).
 */
export interface StoredEvent {
  counted: Promise<RecordedEvent | undefined>;
}

/** Events per commit: one insert and one rollup update command per collection each, far below MongoDB's limits. */
const MAX_EVENTS_PER_COMMIT = 500;
/** How long the writer that inserted an event owns its pending aggregates before a replay may take over. */
const ROLLUP_LEASE_MS = 30_000;
/** Events a sweep takes over per query; it queries again while a batch comes back full. */
const SWEEP_BATCH = 100;
/** Retries of a failed marker clearing: delays double from the base up to the cap, for about ten minutes. */
const SETTLE_RETRY_BASE_MS = 250;
const SETTLE_RETRY_MAX_MS = 5_000;
const SETTLE_RETRY_ATTEMPTS = 120;
const DUPLICATE_KEY = 11000;
const DAY_MS = 86_400_000;
const TOTALS_FIELDS = { 'totals.totalTokens': 1, 'totals.costMicros': 1 };
const MARKERS = { rollupsPending: '', rollupsLeaseUntil: '' };

type RollupModel = Model<UsageRollup> | Model<UserUsageRollup>;

/** What became of one write of a bulk write: `unknown` when the server may or may not have applied it. */
type WriteOutcome = { status: 'applied' } | { status: 'failed'; error: Error } | { status: 'unknown'; error: Error };
const APPLIED: WriteOutcome = { status: 'applied' };

/** All the events of a commit that go to one rollup document, as one $inc upsert. */
interface RollupUpsert {
  id: string;
  increments: Record<string, number>;
  setOnInsert: Document;
  outcome?: WriteOutcome;
}

interface InsertedEvent {
  index: number;
  event: UsageEvent;
  targets: RollupTarget[];
  upserts: Partial<Record<RollupTarget, RollupUpsert>>;
}

/** Selects the events of a re-pricing run. `to` is exclusive. */
export interface RepricingFilter {
  from: Date;
  to: Date;
  userId?: string;
  model?: string;
}

/** A new price for one event, and the id that makes its ledger correction idempotent. */
export interface EventRepricing {
  repriceId: string;
  costMicros: number;
  costSource: string;
  priceVersion?: string;
  priceEntry?: string;
}

/** An event whose re-pricing is under way: the cost moved on the event, and what is left to move elsewhere. */
export interface RepricingInProgress {
  event: UsageEvent;
  repriceId: string;
  deltaMicros: number;
  pending: string[];
}

/** How long a re-pricing run owns an event it started before another run may complete it. */
const REPRICING_LEASE_MS = 5 * 60_000;

/** Cost sources a price list decided, so a price list fix may change them (a provider's own figure never changes). */
const REPRICEABLE_SOURCES = ['catalog', 'genai-prices', 'unpriced'];

/** A write error of a bulk write, as an Error the caller can log and the outbox can report. */
export class UsageWriteError extends Error {
  constructor(
    message: string,
    readonly code?: number,
  ) {
    super(message);
    this.name = 'UsageWriteError';
  }
}

/**
 * Writes usage events and their aggregates by group commit: the events waiting when a
 * commit starts go in one unordered insertMany, their aggregate increments merged per
 * rollup document into one unordered bulkWrite per rollup collection, and their
 * pending-aggregate markers cleared by one update. A replayed event (its `_id`, the
 * recordId, already stored) completes whatever aggregates an earlier attempt left pending,
 * on its own. Only this class writes usage_events, usage_rollups and usage_user_rollups.
 *
 * Each aggregate counts each event exactly once where the server says what it did: an update
 * it refused (a write error) stays pending on its events, whose lease is released so the
 * replay that follows the rejection applies just those. An update with no answer (lost reply,
 * write concern error) counts as applied: the aggregate may then miss those events, but no
 * replay can count one twice.
 *
 * Events whose lease ran out with aggregates still pending (their writer crashed, or its
 * caller never replayed them) are completed by sweepExpired, through the same atomic claim
 * a replay uses, so concurrent sweepers and replays count each event once.
 *
 * When clearing the markers fails after the aggregates were applied, the clearing is retried
 * in the background and the lease kept extended meanwhile, and this process's own sweeps and
 * replays leave those events alone. What remains: if the process dies in that window (or
 * between applying the aggregates and clearing the markers at all), the markers still claim
 * the applied aggregates pending, and the sweep after the lease counts those events in them a
 * second time. Closing that would take a transaction (a replica set) around the aggregate and
 * marker writes, or a per-commit record in every aggregate document; both cost more than a
 * crash in a window of one round trip is worth here.
 */
@Injectable()
export class UsageEventWriter {
  private readonly logger = new Logger(UsageEventWriter.name);
  private readonly calendar: UsageCalendar;
  private readonly commits = new GroupCommit<UsageEvent, StoredEvent>((batch) => this.commit(batch), { maxBatch: MAX_EVENTS_PER_COMMIT });
  /** Inserted events whose aggregates are still to be written: a second group commit, behind the caller's back, that lingers for larger batches. */
  private readonly counts: GroupCommit<InsertedEvent, RecordedEvent>;
  private readonly counting = new Set<Promise<unknown>>();
  /** Events whose aggregates are applied but whose markers are not cleared yet: nobody here may take them over. */
  private readonly unsettled = new Set<string>();
  private readonly settling = new Set<Promise<void>>();
  private stopping = false;
  private readonly wakers = new Set<() => void>();

  constructor(
    @InjectModel(UsageEvent.name) private readonly events: Model<UsageEvent>,
    @InjectModel(UsageRollup.name) private readonly rollups: Model<UsageRollup>,
    @InjectModel(UserUsageRollup.name) private readonly userRollups: Model<UserUsageRollup>,
    private readonly config: AppConfig,
    private readonly clock: Clock,
    private readonly alerts: AlertsService,
  ) {
    this.calendar = new UsageCalendar(config.USAGE_TIMEZONE);
    this.counts = new GroupCommit((batch) => this.countInserted(batch), { maxBatch: MAX_EVENTS_PER_COMMIT, lingerMs: config.USAGE_AGGREGATE_LINGER_MS });
  }

  /**
   * Resolves once the event is stored, which is when it is durable: its pending markers
   * guarantee its aggregates get written, by this writer right after (StoredEvent.counted),
   * or else by the sweep. Rejects when the event may not be stored (the caller replays it).
   * A replay of a stored event resolves once it completed what an earlier attempt left.
   */
  write(event: UsageEvent): Promise<StoredEvent> {
    return this.commits.submit(event);
  }

  /** Waits until the aggregates of every event stored so far are written or left to the sweep (read-your-writes in this process). */
  async flushed(): Promise<void> {
    // Only what is under way now: under steady load, waiting for an empty set could take forever.
    this.hurry();
    await Promise.allSettled([...this.counting]);
  }

  /** Starts the aggregate write of every event stored so far now, without its linger. */
  hurry(): void {
    this.counts.hurry();
  }

  /**
   * The events a re-pricing run may change, oldest first: priced by a price list, not cache
   * hits (no provider call), counted in their aggregates, and not in the middle of a re-pricing.
   */
  repricingCandidates(filter: RepricingFilter): AsyncIterable<UsageEvent> {
    const query: Document = {
      timestamp: { $gte: filter.from, $lt: filter.to },
      costSource: { $in: REPRICEABLE_SOURCES },
      cacheHit: false,
      rollupsPending: { $exists: false },
      repricing: { $exists: false },
    };
    if (filter.userId !== undefined) query.user_id = filter.userId;
    if (filter.model !== undefined) query.model_name = filter.model;
    return this.events.collection.find(query).sort({ timestamp: 1, _id: 1 }) as unknown as AsyncIterable<UsageEvent>;
  }

  /**
   * Events a re-pricing run left half done (it stopped between the event and its aggregates or
   * ledger), each claimed by renewing its lease, so a run still at work on an event, or another
   * run resuming it, is never joined.
   */
  async interruptedRepricings(now: Date): Promise<RepricingInProgress[]> {
    const claimed: RepricingInProgress[] = [];
    for (;;) {
      const document = (await this.events.collection.findOneAndUpdate(
        { repricing: { $exists: true }, 'repricing.leaseUntil': { $lt: now } },
        { $set: { 'repricing.leaseUntil': new Date(now.getTime() + REPRICING_LEASE_MS) } },
        { returnDocument: 'after' },
      )) as unknown as (UsageEvent & { repricing: Omit<RepricingInProgress, 'event'> & { leaseUntil: Date } }) | null;
      if (!document) return claimed;
      const { leaseUntil: _lease, ...repricing } = document.repricing;
      claimed.push({ event: document, ...repricing });
    }
  }

  /**
   * Moves the event to its new price, if it still has the price it was read with, and marks
   * what is left to correct: its aggregates and the user's ledger. Returns null when the event
   * changed meanwhile (another run got there first).
   */
  async beginRepricing(event: UsageEvent, change: EventRepricing, now: Date): Promise<RepricingInProgress | null> {
    const deltaMicros = change.costMicros - event.cost_micros;
    const pending = [...targetsOf(event), ...(event.user_id !== null ? ['ledger'] : [])];
    const repricing = { repriceId: change.repriceId, deltaMicros, pending };
    const leaseUntil = new Date(now.getTime() + REPRICING_LEASE_MS);
    const attribution = { priceVersion: change.priceVersion, priceEntry: change.priceEntry };
    const unset = Object.fromEntries(Object.entries(attribution).filter(([, value]) => value === undefined).map(([key]) => [key, '']));
    const set = Object.fromEntries(Object.entries(attribution).filter(([, value]) => value !== undefined));
    const result = await this.events.collection.updateOne(
      { _id: event._id as never, cost_micros: event.cost_micros, costSource: event.costSource, repricing: { $exists: false }, rollupsPending: { $exists: false } },
      {
        $set: {
          ...set,
          cost_micros: change.costMicros,
          cost_estimate: change.costMicros / 1e6,
          costSource: change.costSource,
          previousCostMicros: event.cost_micros,
          repricedAt: now,
          repricing: { ...repricing, leaseUntil },
        },
        ...(Object.keys(unset).length > 0 ? { $unset: unset } : {}),
      },
    );
    if (result.modifiedCount !== 1) return null;
    const { priceVersion: _version, priceEntry: _entry, ...rest } = event;
    const moved: UsageEvent = { ...rest, ...set, cost_micros: change.costMicros, cost_estimate: change.costMicros / 1e6, costSource: change.costSource as UsageEvent['costSource'] };
    return { event: moved, ...repricing };
  }

  /** Moves the event's aggregates by its cost change, each at most once; a document gone (expired) is left gone. */
  async correctAggregates(progress: RepricingInProgress, now: Date): Promise<void> {
    const { event, deltaMicros } = progress;
    const day = this.calendar.dayKey(event.timestamp);
    const month = this.calendar.monthKey(event.timestamp);
    const input = { operation: event.operation_type, model: event.model_name, provider: event.provider, tier: event.tier };
    for (const target of progress.pending) {
      if (!(ROLLUP_TARGETS as readonly string[]).includes(target)) continue;
      if (deltaMicros !== 0) {
        const update = { $inc: costCorrectionIncrements(input, deltaMicros, !isUserTarget(target as RollupTarget)), $set: { updatedAt: now } };
        if (target === 'day') await this.rollups.collection.updateOne({ _id: systemRollupId('day', day) as never }, update);
        else if (target === 'month') await this.rollups.collection.updateOne({ _id: systemRollupId('month', month) as never }, update);
        else if (target === 'userDay') await this.userRollups.collection.updateOne({ _id: userRollupId('day', day, event.user_id!) as never }, update);
        else await this.userRollups.collection.updateOne({ _id: userRollupId('month', month, event.user_id!) as never }, update);
      }
      await this.events.collection.updateOne({ _id: event._id as never }, { $pull: { 'repricing.pending': target } as never });
    }
  }

  /** The ledger part is done (or there is none): the event's re-pricing is complete. */
  async finishRepricing(eventId: string): Promise<void> {
    await this.events.collection.updateOne({ _id: eventId as never }, { $unset: { repricing: '' } });
  }

  private async commit(batch: UsageEvent[]): Promise<PromiseSettledResult<StoredEvent>[]> {
    const outcomes: PromiseSettledResult<StoredEvent>[] = new Array(batch.length);
    const fail = (index: number, error: unknown) => (outcomes[index] = { status: 'rejected', reason: error });
    const now = this.clock.now();
    const targets = batch.map(targetsOf);

    let inserts: WriteOutcome[];
    try {
      await this.events.collection.insertMany(
        batch.map((event, index) => ({ ...event, rollupsPending: targets[index], rollupsLeaseUntil: new Date(now + ROLLUP_LEASE_MS) })) as never[],
        { ordered: false },
      );
      inserts = batch.map(() => APPLIED);
    } catch (error) {
      // Events whose insert may have landed keep their lease; a replay after it runs out completes them.
      inserts = outcomesOfFailedBulkWrite(error, batch.length, (result) => result.insertedCount);
    }
    const inserted: InsertedEvent[] = [];
    const replays: number[] = [];
    inserts.forEach((insert, index) => {
      if (insert.status === 'applied') inserted.push({ index, event: batch[index], targets: targets[index], upserts: {} });
      else if (insert.status === 'failed' && (insert.error as UsageWriteError).code === DUPLICATE_KEY) replays.push(index);
      else fail(index, insert.error);
    });

    for (const entry of inserted) outcomes[entry.index] = { status: 'fulfilled', value: { counted: this.count(entry) } };
    // A duplicate within this batch waits for its twin's aggregates, so it finds them complete or released.
    if (replays.length > 0) await this.flushed();
    await Promise.all(
      replays.map(async (index) => {
        try {
          outcomes[index] = { status: 'fulfilled', value: { counted: Promise.resolve(await this.completeReplay(batch[index])) } };
        } catch (error) {
          fail(index, error);
        }
      }),
    );
    return outcomes;
  }

  /** Hands a stored event to the aggregate commit; a failure leaves its aggregates to the sweep. */
  private count(entry: InsertedEvent): Promise<RecordedEvent | undefined> {
    const counted = this.counts.submit(entry).catch((error: Error) => {
      this.logger.warn(`Aggregates of usage event ${entry.event._id} not written (${error.message}); the sweep completes them`);
      return undefined;
    });
    this.counting.add(counted);
    void counted.finally(() => this.counting.delete(counted));
    return counted;
  }

  /** Applies the aggregates of newly inserted events, then clears or releases their markers; one outcome per event, in order. */
  private async countInserted(batch: InsertedEvent[]): Promise<PromiseSettledResult<RecordedEvent>[]> {
    const inserted = batch.map((entry, index): InsertedEvent => ({ ...entry, index, upserts: {} }));
    const updatedAt = new Date(this.clock.now());
    const system = new Map<string, RollupUpsert>();
    const user = new Map<string, RollupUpsert>();
    for (const entry of inserted) this.plan(entry, system, user);
    await Promise.all([this.upsertAll(this.rollups, [...system.values()], updatedAt), this.upsertAll(this.userRollups, [...user.values()], updatedAt)]);

    const complete: InsertedEvent[] = [];
    const incomplete: { entry: InsertedEvent; error: Error }[] = [];
    const cleared: string[] = [];
    const released = new Map<string, { done: RollupTarget[]; ids: string[] }>();
    const uncertain: { entry: InsertedEvent; error: Error }[] = [];
    for (const entry of inserted) {
      const outcomes = entry.targets.map((target) => entry.upserts[target]!.outcome!);
      const failed = outcomes.find((outcome) => outcome.status === 'failed');
      const unknown = outcomes.find((outcome) => outcome.status === 'unknown');
      if (unknown) uncertain.push({ entry, error: unknown.error });
      if (!failed && !unknown) complete.push(entry);
      else incomplete.push({ entry, error: (failed ?? unknown)!.error });
      // An update whose outcome is unknown counts as applied: no replay may count an event twice.
      if (!failed) {
        cleared.push(entry.event._id);
        continue;
      }
      const done = entry.targets.filter((target) => entry.upserts[target]!.outcome!.status !== 'failed');
      const key = done.join(',');
      if (!released.has(key)) released.set(key, { done, ids: [] });
      released.get(key)!.ids.push(entry.event._id);
    }
    if (uncertain.length > 0) {
      const ids = uncertain.slice(0, 5).map(({ entry }) => entry.event._id).join(', ');
      this.logger.error(
        `Aggregate updates for ${uncertain.length} usage events (${ids}${uncertain.length > 5 ? ', ...' : ''}) have an unknown outcome ` +
          `(${uncertain[0].error.message}); they count as applied, so these events may be missing from some aggregates but never count twice`,
      );
    }

    await this.settleMarkers(cleared, released);
    const totals = complete.length > 0 && this.alerts.needsTotals ? await this.readTotals(complete) : undefined;
    const outcomes: PromiseSettledResult<RecordedEvent>[] = new Array(inserted.length);
    for (const entry of complete) outcomes[entry.index] = { status: 'fulfilled', value: { event: entry.event, totals: totals?.(entry) ?? {} } };
    for (const { entry, error } of incomplete) outcomes[entry.index] = { status: 'rejected', reason: error };
    return outcomes;
  }

  /** Adds an event's increments to the upserts of its aggregates: one upsert per document per commit. */
  private plan(entry: InsertedEvent, system: Map<string, RollupUpsert>, user: Map<string, RollupUpsert>): void {
    for (const [target, upsert] of Object.entries(this.upsertsOf(entry.event, entry.targets)) as [RollupTarget, RollupUpsert][]) {
      const upserts = isUserTarget(target) ? user : system;
      const existing = upserts.get(upsert.id);
      if (!existing) {
        upserts.set(upsert.id, upsert);
      } else {
        // $inc increments are sums of numbers, so one $inc of the sums counts every event.
        for (const [path, value] of Object.entries(upsert.increments)) existing.increments[path] = (existing.increments[path] ?? 0) + value;
        // A user's day document expires DAILY_RETENTION_DAYS after the latest event that could create it.
        if (upsert.setOnInsert.expiresAt > existing.setOnInsert.expiresAt) existing.setOnInsert.expiresAt = upsert.setOnInsert.expiresAt;
      }
      entry.upserts[target] = existing ?? upsert;
    }
  }

  /** One event's update of each of its aggregates. */
  private upsertsOf(event: UsageEvent, targets: RollupTarget[]): Partial<Record<RollupTarget, RollupUpsert>> {
    const input = rollupInputOf(event);
    const day = this.calendar.dayKey(event.timestamp);
    const month = this.calendar.monthKey(event.timestamp);
    const userId = event.user_id!;
    const build: Record<RollupTarget, () => RollupUpsert> = {
      day: () => ({ id: systemRollupId('day', day), increments: systemRollupIncrements(input), setOnInsert: { granularity: 'day', period: day } }),
      month: () => ({ id: systemRollupId('month', month), increments: systemRollupIncrements(input), setOnInsert: { granularity: 'month', period: month } }),
      userDay: () => ({
        id: userRollupId('day', day, userId),
        increments: userRollupIncrements(input),
        setOnInsert: { granularity: 'day', period: day, userId, expiresAt: new Date(event.timestamp.getTime() + this.config.DAILY_RETENTION_DAYS * DAY_MS) },
      }),
      userMonth: () => ({ id: userRollupId('month', month, userId), increments: userRollupIncrements(input), setOnInsert: { granularity: 'month', period: month, userId } }),
    };
    return Object.fromEntries(targets.map((target) => [target, build[target]()]));
  }

  /** One unordered bulk write of $inc upserts; sets each upsert's outcome. */
  private async upsertAll(model: RollupModel, upserts: RollupUpsert[], updatedAt: Date, retryRaces = true): Promise<void> {
    if (upserts.length === 0) return;
    const operations: Document[] = upserts.map((upsert) => ({
      updateOne: {
        filter: { _id: upsert.id },
        update: updateOf(upsert, updatedAt),
        upsert: true,
      },
    }));
    try {
      await model.collection.bulkWrite(operations as AnyBulkWriteOperation[], { ordered: false });
      for (const upsert of upserts) upsert.outcome = APPLIED;
      return;
    } catch (error) {
      const outcomes = outcomesOfFailedBulkWrite(error, upserts.length, (result) => result.matchedCount + result.upsertedCount);
      upserts.forEach((upsert, index) => (upsert.outcome = outcomes[index]));
    }
    // Concurrent first upserts of one _id can lose the insert race with E11000; the retry updates.
    const raced = upserts.filter((upsert) => upsert.outcome!.status === 'failed' && (upsert.outcome!.error as UsageWriteError).code === DUPLICATE_KEY);
    if (retryRaces && raced.length > 0) await this.upsertAll(model, raced, updatedAt, false);
  }

  /**
   * Clears the markers of events counted in all their aggregates; releases the others (lease
   * ended, applied aggregates no longer pending) so a replay completes just the rest, at once.
   */
  private async settleMarkers(cleared: string[], released: Map<string, { done: RollupTarget[]; ids: string[] }>): Promise<void> {
    const operations: Document[] = [];
    if (cleared.length > 0) operations.push({ updateMany: { filter: { _id: { $in: cleared } }, update: { $unset: MARKERS } } });
    for (const { done, ids } of released.values()) {
      operations.push({
        updateMany: {
          filter: { _id: { $in: ids }, rollupsPending: { $exists: true } },
          update: { ...(done.length > 0 ? { $pullAll: { rollupsPending: done } } : {}), $set: { rollupsLeaseUntil: new Date(0) } },
        },
      });
    }
    if (operations.length === 0) return;
    try {
      await this.events.collection.bulkWrite(operations as AnyBulkWriteOperation[], { ordered: false });
    } catch (error) {
      // Still resolved: the aggregates are written. Failing the events would send them to the
      // outbox, whose replay could count them again once their lease runs out.
      const ids = [...cleared, ...[...released.values()].flatMap((group) => group.ids)];
      this.logger.warn(`Clearing the aggregate markers of ${ids.length} usage events failed (${(error as Error).message}); retrying in the background`);
      this.retrySettle(operations, ids);
    }
  }

  /**
   * Retries a marker clearing until it succeeds, extending the lease of the events after each
   * failure so that no sweeper or replay elsewhere takes over aggregates already applied.
   */
  private retrySettle(operations: Document[], ids: string[]): void {
    for (const id of ids) this.unsettled.add(id);
    const retry = (async () => {
      for (let attempt = 1; ; attempt += 1) {
        await this.pause(Math.min(SETTLE_RETRY_BASE_MS * 2 ** (attempt - 1), SETTLE_RETRY_MAX_MS));
        try {
          await this.events.collection.bulkWrite(operations as AnyBulkWriteOperation[], { ordered: false });
          return;
        } catch (error) {
          if (this.stopping || attempt >= SETTLE_RETRY_ATTEMPTS) {
            this.logger.error(
              `Gave up clearing the aggregate markers of usage events ${ids.slice(0, 5).join(', ')}${ids.length > 5 ? ', ...' : ''} ` +
                `(${(error as Error).message}); once their lease runs out a sweep will count them in those aggregates again`,
            );
            return;
          }
        }
        try {
          await this.events.collection.updateMany(
            { _id: { $in: ids as never[] }, rollupsPending: { $exists: true } },
            { $set: { rollupsLeaseUntil: new Date(this.clock.now() + ROLLUP_LEASE_MS) } },
          );
        } catch {
          // The next attempt tries both again, well within the lease.
        }
      }
    })().finally(() => {
      for (const id of ids) this.unsettled.delete(id);
      this.settling.delete(retry);
    });
    this.settling.add(retry);
  }

  /** Waits `ms`, or less once stop() was called. */
  private pause(ms: number): Promise<void> {
    if (this.stopping) return Promise.resolve();
    return new Promise((resolve) => {
      const wake = () => {
        clearTimeout(timer);
        this.wakers.delete(wake);
        resolve();
      };
      const timer = setTimeout(wake, ms);
      this.wakers.add(wake);
    });
  }

  /** Makes pending marker retries try once more at once, then waits for them (shutdown). */
  async stop(): Promise<void> {
    while (this.counting.size > 0) await this.flushed();
    this.stopping = true;
    for (const wake of [...this.wakers]) wake();
    await Promise.allSettled([...this.settling]);
  }

  /** The totals after this commit of every aggregate the complete events were counted in (one find per collection). */
  private async readTotals(complete: InsertedEvent[]): Promise<(entry: InsertedEvent) => RollupTotals> {
    const ids = (users: boolean) => [
      ...new Set(complete.flatMap((entry) => entry.targets.filter((target) => isUserTarget(target) === users).map((target) => entry.upserts[target]!.id))),
    ];
    const read = async (model: RollupModel, idList: string[]) => {
      if (idList.length === 0) return new Map<string, PeriodTotals>();
      const documents = await model.collection.find({ _id: { $in: idList as never[] } }, { projection: TOTALS_FIELDS }).toArray();
      return new Map(documents.map((document) => [String(document._id), periodTotalsOf(document)]));
    };
    try {
      const [system, user] = await Promise.all([read(this.rollups, ids(false)), read(this.userRollups, ids(true))]);
      return (entry) =>
        Object.fromEntries(
          entry.targets.map((target) => [target, (isUserTarget(target) ? user : system).get(entry.upserts[target]!.id)]).filter(([, totals]) => totals),
        ) as RollupTotals;
    } catch (error) {
      // Alerts fire on totals at or after an event, so the next event's evaluation catches up.
      this.logger.warn(`Reading aggregate totals for budget alerts failed: ${(error as Error).message}`);
      return () => ({});
    }
  }

  /**
   * Completes the aggregates of events whose lease ran out or was released, a bounded batch
   * per query, calling onRecorded for each event it counted; returns how many it counted.
   * Safe to run in several processes at once: each event is taken over by one of them.
   */
  async sweepExpired(onRecorded: (recorded: RecordedEvent) => void): Promise<number> {
    let completed = 0;
    // Keyset by _id: an event whose aggregates fail again is released at once and must not be retried in this sweep.
    let after: string | undefined;
    for (;;) {
      const expired = await this.events.collection
        .find(
          {
            rollupsLeaseUntil: { $lt: new Date(this.clock.now()) },
            rollupsPending: { $exists: true },
            ...(after !== undefined ? { _id: { $gt: after as never } } : {}),
          },
          { projection: { _id: 1 } },
        )
        .sort({ _id: 1 })
        .limit(SWEEP_BATCH)
        .toArray();
      const results = await Promise.allSettled(expired.map(({ _id }) => this.takeOver(String(_id), 'swept')));
      results.forEach((result, index) => {
        if (result.status === 'rejected') {
          this.logger.warn(`Completing the aggregates of usage event ${String(expired[index]._id)} failed: ${(result.reason as Error).message}`);
        } else if (result.value) {
          completed += 1;
          onRecorded(result.value);
        }
      });
      if (expired.length < SWEEP_BATCH) return completed;
      after = String(expired[expired.length - 1]._id);
    }
  }

  /** A replay of a stored event: completes what an earlier attempt left pending (see takeOver). */
  private completeReplay(event: UsageEvent): Promise<RecordedEvent | undefined> {
    return this.takeOver(event._id, 'replayed');
  }

  /**
   * Takes over a stored event's pending aggregates (when the attempt that left them released
   * them or its lease ran out) and applies them one by one; undefined when the event is
   * complete or another writer is still on it.
   */
  private async takeOver(id: string, reason: 'replayed' | 'swept'): Promise<RecordedEvent | undefined> {
    if (this.unsettled.has(id)) return undefined;
    const now = this.clock.now();
    const stored = (await this.events.collection.findOneAndUpdate(
      { _id: id as never, rollupsPending: { $exists: true }, rollupsLeaseUntil: { $lt: new Date(now) } },
      { $set: { rollupsLeaseUntil: new Date(now + ROLLUP_LEASE_MS) } },
      { returnDocument: 'after' },
    )) as unknown as (UsageEvent & { rollupsPending: RollupTarget[] }) | null;
    if (!stored) return undefined;
    if (stored.rollupsPending.length === 0) {
      await this.events.collection.updateOne({ _id: id as never }, { $unset: MARKERS });
      return undefined;
    }
    this.logger.warn(`Completing aggregates of ${reason} usage event ${id}: ${stored.rollupsPending.join(', ')}`);
    return { event: stored, totals: await this.applyOneByOne(stored, stored.rollupsPending) };
  }

  private async applyOneByOne(event: UsageEvent, targets: RollupTarget[]): Promise<RollupTotals> {
    const upserts = this.upsertsOf(event, targets);
    const updatedAt = new Date(this.clock.now());
    const results = await Promise.allSettled(
      targets.map((target) => upsertOne(isUserTarget(target) ? this.userRollups : this.rollups, upserts[target]!, updatedAt)),
    );
    const totals: RollupTotals = {};
    const failed: unknown[] = [];
    results.forEach((result, index) => {
      if (result.status === 'fulfilled') totals[targets[index]] = result.value;
      else failed.push(result.reason);
    });
    const applied = targets.filter((target) => totals[target]);
    await this.events.collection.updateOne(
      { _id: event._id as never },
      (failed.length === 0
        ? { $unset: MARKERS }
        : // Release the lease at once so the caller's retry can complete the rest.
          { $pullAll: { rollupsPending: applied }, $set: { rollupsLeaseUntil: new Date(0) } }) as Document,
    );
    if (failed.length > 0) throw failed[0];
    return totals;
  }
}

function targetsOf(event: UsageEvent): RollupTarget[] {
  return ROLLUP_TARGETS.filter((target) => event.user_id !== null || !isUserTarget(target));
}

function isUserTarget(target: RollupTarget): boolean {
  return target === 'userDay' || target === 'userMonth';
}

function updateOf(upsert: RollupUpsert, updatedAt: Date): Document {
  return { $inc: upsert.increments, $set: { updatedAt }, $setOnInsert: upsert.setOnInsert };
}

/**
 * Per-write outcomes of a failed unordered bulk write. Exact when the server answered for
 * every write (the writes without a write error were applied); every write `failed` when the
 * command never left the driver; otherwise (no reply, a write concern error) `unknown`.
 */
function outcomesOfFailedBulkWrite(error: unknown, count: number, acknowledged: (result: BulkWriteResult) => number): WriteOutcome[] {
  const cause = error instanceof Error ? error : new Error(String(error));
  if (error instanceof MongoBulkWriteError) {
    const writeErrors = error.result.getWriteErrors();
    // One command per bulk write here, so when counts add up, every write was answered for.
    if (acknowledged(error.result) + writeErrors.length === count) {
      const outcomes: WriteOutcome[] = Array.from({ length: count }, () =>
        error.result.getWriteConcernError() ? { status: 'unknown', error: cause } : APPLIED,
      );
      for (const writeError of writeErrors) {
        outcomes[writeError.index] = { status: 'failed', error: new UsageWriteError(writeError.errmsg ?? 'write failed', writeError.code) };
      }
      return outcomes;
    }
  }
  const status = neverSent(error) ? 'failed' : 'unknown';
  return Array.from({ length: count }, () => ({ status, error: cause }));
}

/** Errors raised before a command is sent. The driver wraps them in MongoBulkWriteError, keeping the original as errorResponse. */
function neverSent(error: unknown): boolean {
  const original: unknown = error instanceof MongoBulkWriteError ? error.errorResponse : error;
  return original instanceof MongoServerSelectionError || original instanceof MongoNotConnectedError || original instanceof MongoTopologyClosedError;
}

async function upsertOne(model: RollupModel, upsert: RollupUpsert, updatedAt: Date): Promise<PeriodTotals> {
  // A concurrent first upsert of the same _id can lose the insert race with E11000; the retry updates.
  for (let attempt = 0; ; attempt += 1) {
    try {
      const after = await model.collection.findOneAndUpdate({ _id: upsert.id as never }, updateOf(upsert, updatedAt), {
        upsert: true,
        returnDocument: 'after',
        projection: { _id: 0, ...TOTALS_FIELDS },
      });
      return periodTotalsOf(after);
    } catch (error) {
      if (attempt > 0 || (error as { code?: unknown }).code !== DUPLICATE_KEY) throw error;
    }
  }
}

function periodTotalsOf(document: Document | null): PeriodTotals {
  const totals = (document as { totals?: Partial<PeriodTotals> } | null)?.totals;
  return { totalTokens: totals?.totalTokens ?? 0, costMicros: totals?.costMicros ?? 0 };
}

function rollupInputOf(event: UsageEvent): RollupInput {
  const latencyMs = Math.round(event.response_time * 1000);
  return {
    operation: event.operation_type,
    model: event.model_name,
    provider: event.provider,
    tier: event.tier,
    promptTokens: event.prompt_tokens,
    completionTokens: event.completion_tokens,
    embeddingTokens: event.embedding_tokens,
    costMicros: event.cost_micros,
    latencyMs,
    success: event.success,
    cacheHit: event.cacheHit,
    ...(event.tool_name !== undefined ? { tool: { name: event.tool_name, executionTimeMs: latencyMs } } : {}),
  };
}
