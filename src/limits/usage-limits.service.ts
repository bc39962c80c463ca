import { HttpException, HttpStatus, Injectable, Logger, OnModuleInit, ServiceUnavailableException } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import type Redis from 'ioredis';
import { Clock } from '../common/clock';
import { usdToMicros } from '../common/money';
import { AppConfig } from '../config/app-config';
import { RedisService } from '../redis/redis.service';
import { UsageCalendar } from '../token-tracking/usage-calendar';
import { effectiveLimits, FailMode, parseTierTable, TierLimits, TierTable } from './tier-limits';
import { PLAN_SCRIPT, RESERVE_SCRIPT, SEED_SCRIPT, SETTLE_SCRIPT, STATE_SCRIPT } from './usage-counters.lua';

export const WINDOW_MS = 24 * 60 * 60 * 1000;
const DAY_TTL_SECONDS = 2 * 24 * 3600;
const MONTH_TTL_SECONDS = 40 * 24 * 3600;
/** The plan hash (the seed marker) outlives any window it vouches for; every settle renews it. */
const PLAN_TTL_SECONDS = 2 * 24 * 3600;
const UNTRACKED_WINDOW: WindowState = Object.freeze({ trackingEnabled: false, currentUsage: 0, resetAt: null });
/** Smallest completion worth calling the provider for when a limit forces max_tokens down. */
export const MIN_COMPLETION_TOKENS = 16;
/** After a failed refresh of a stale plan (MongoDB down), how long before the next try. */
const REFRESH_RETRY_MS = 5_000;

export type LimitName = 'rolling_24h_tokens' | 'daily_tokens' | 'monthly_cost';

export interface UserPlan {
  tier: string;
  limits: TierLimits;
}

/** What the ledger knows, used to seed day and month counters after a Redis restart. */
export interface LedgerPeriodUsage {
  dayTokens: number;
  monthCostMicros: number;
}

/** One tracked call as the ledger recorded it, for replaying the rolling window. */
export interface UsageMoment {
  at: number;
  tokens: number;
}

export interface StoredPlan {
  tier?: string | null;
  limits?: TierLimits | null;
  /** Raised by every change of tier or limits; orders concurrent writes of the plan to Redis. */
  version?: number;
  /** An admin cleared the rolling window then: usage before it is not replayed into the window. */
  windowResetAt?: Date | null;
}

export interface PlanSource {
  planOf(userId: string): Promise<StoredPlan>;
  periodUsage(userId: string, day: string, month: string): Promise<LedgerPeriodUsage>;
  /** The user's tracked calls since `since`, oldest first. */
  usageSince(userId: string, since: Date): Promise<UsageMoment[]>;
  recordWindowReset(userId: string, at: Date): Promise<void>;
}

export interface ReservationRequest extends ReservationPart {
  userId: string;
  /** Upper bound on micro-USD per token for the model (its dearest price), for the cost limit. */
  microsPerToken: number;
}

/** One provider call of a request: what it sends and the most it may answer with. */
export interface ReservationPart {
  promptTokens: number;
  /** max_tokens the call asks for. */
  maxCompletionTokens: number;
  /** Completion tokens to hold (default maxCompletionTokens); the call is then sent with at most this. */
  reserveCompletionTokens?: number;
}

export interface Reservation {
  id: string;
  userId: string;
  /** Tokens held for the call (prompt and completion); 0 when not enforced. */
  tokens: number;
  /** Whether the reservation is held in Redis; false when Redis was down and the tier fails open. */
  enforced: boolean;
  /** max_tokens to send the provider (lowered when a limit leaves less room). */
  maxCompletionTokens: number;
  plan: UserPlan;
}

export interface WindowState {
  trackingEnabled: boolean;
  currentUsage: number;
  /** When the current window ends; null when no window is open. */
  resetAt: Date | null;
}

/** The window right after a settle, with the day and month counters the same script left behind. */
export interface SettledWindow extends WindowState {
  /** Tokens counted today; null when the counter is not seeded (no daily limit checked yet). */
  dayTokens: number | null;
  /** Micro-USD counted this month; null when the counter is not seeded. */
  monthCostMicros: number | null;
}

export interface LimitState extends WindowState {
  tier: string;
  limits: TierLimits;
  remaining: { rolling24hTokens: number | null; dailyTokens: number | null; monthlyCostUsd: number | null } | null;
}

export class TokenLimitExceededException extends HttpException {
  constructor(limit: LimitName, used: number, max: number, resetsAt: Date, now: number) {
    const retryAfterSeconds = Math.max(1, Math.ceil((resetsAt.getTime() - now) / 1000));
    const readable = limit === 'monthly_cost' ? `$${(max / 1e6).toFixed(2)}` : `${max} tokens`;
    const description = { rolling_24h_tokens: '24-hour token limit', daily_tokens: 'daily token limit', monthly_cost: 'monthly cost limit' }[limit];
    super(
      {
        statusCode: 429,
        error: 'Too Many Requests',
        message: `${description} of ${readable} reached; resets at ${resetsAt.toISOString()}`,
        limit,
        used: limit === 'monthly_cost' ? used / 1e6 : used,
        max: limit === 'monthly_cost' ? max / 1e6 : max,
        resetsAt: resetsAt.toISOString(),
        retryAfterSeconds,
      },
      HttpStatus.TOO_MANY_REQUESTS,
    );
  }
}

type RedisWithScripts = Redis & {
  tlReserve(...args: (string | number)[]): Promise<(number | string | null)[]>;
  tlSettle(...args: (string | number)[]): Promise<[number, number, number, number]>;
  tlSeed(...args: (string | number)[]): Promise<number>;
  tlPlan(...args: (string | number)[]): Promise<number>;
  tlState(...args: (string | number)[]): Promise<(number | string | null)[]>;
};

/** Plan fields as the scripts return them: tier, rolling, daily, monthly micros (-1 = none), failMode. */
function planFromFields(fields: (number | string | null)[]): UserPlan {
  const limit = (value: number | string | null) => (value === null || Number(value) < 0 ? null : Number(value));
  const monthly = limit(fields[3]);
  return {
    tier: String(fields[0]),
    limits: {
      rolling24hTokens: limit(fields[1]),
      dailyTokens: limit(fields[2]),
      monthlyCostUsd: monthly === null ? null : monthly / 1e6,
      failMode: fields[4] === 'closed' ? 'closed' : 'open',
    },
  };
}

function planArgs(plan: UserPlan): (string | number)[] {
  const { limits } = plan;
  return [
    plan.tier,
    limits.rolling24hTokens ?? -1,
    limits.dailyTokens ?? -1,
    limits.monthlyCostUsd == null ? -1 : usdToMicros(limits.monthlyCostUsd),
    limits.failMode ?? 'open',
  ];
}

/**
 * Limits enforced before money is spent: a request first reserves the worst case
 * (prompt + max_tokens) of all its provider calls atomically in Redis against the rolling
 * 24 h, calendar-day and calendar-month limits; each call's part is settled to the actual
 * usage afterwards, which also feeds the rolling window.
 *
 * The plan (tier and effective limits) is held in Redis beside the counters and read in the
 * same script step, so a change made through any instance applies to the next request in
 * every instance. MongoDB stays the source of truth: a plan missing from Redis (and with it
 * every counter) is seeded from it, and a plan older than PLAN_CACHE_MS is re-read from it in
 * the background. The in-process copy only serves while Redis is down (last known plan).
 */
@Injectable()
export class UsageLimitsService implements OnModuleInit {
  private readonly logger = new Logger(UsageLimitsService.name);
  private readonly tiers: TierTable;
  private readonly calendar: UsageCalendar;
  private readonly planCache = new Map<string, { plan: UserPlan; expires: number }>();
  private readonly refreshing = new Set<string>();
  /** Enforced reservations of this process not settled yet, per user: held again should Redis lose them. */
  private readonly live = new Map<string, Map<string, string>>();
  private planSource?: PlanSource;

  constructor(
    private readonly redis: RedisService,
    private readonly config: AppConfig,
    private readonly clock: Clock,
  ) {
    this.tiers = parseTierTable(config.TIER_LIMITS);
    if (!this.tiers[config.DEFAULT_TIER]) {
      throw new Error(`DEFAULT_TIER ${config.DEFAULT_TIER} is not one of the tiers: ${Object.keys(this.tiers).join(', ')}`);
    }
    this.calendar = new UsageCalendar(config.USAGE_TIMEZONE);
  }

  onModuleInit(): void {
    const client = this.redis.client;
    client.defineCommand('tlReserve', { numberOfKeys: 5, lua: RESERVE_SCRIPT });
    client.defineCommand('tlSettle', { numberOfKeys: 6, lua: SETTLE_SCRIPT });
    client.defineCommand('tlSeed', { numberOfKeys: 6, lua: SEED_SCRIPT });
    client.defineCommand('tlPlan', { numberOfKeys: 1, lua: PLAN_SCRIPT });
    client.defineCommand('tlState', { numberOfKeys: 5, lua: STATE_SCRIPT });
    client.on('ready', () => void this.holdInFlightAgain());
  }

  /**
   * When Redis is back (perhaps empty), the calls this process still has in flight are held
   * again: another instance that re-seeds a user's counters from the ledger, which does not show
   * them yet, then still counts them. Entries Redis kept are left as they are.
   */
  private async holdInFlightAgain(): Promise<void> {
    if (this.live.size === 0) return;
    const now = this.clock.now();
    const pipeline = this.redis.client.pipeline();
    for (const [userId, held] of this.live) {
      const key = this.keys(userId, now).reservations;
      for (const [id, value] of held) pipeline.hsetnx(key, id, value);
      pipeline.pexpire(key, this.reservationTtlMs * 2);
    }
    await pipeline.exec().catch((error: Error) => this.logger.warn(`In-flight reservations not held again after Redis reconnected: ${error.message}`));
  }

  /** The ledger provides users' tiers and period totals (set once by TokenTrackingModule). */
  usePlanSource(source: PlanSource): void {
    this.planSource = source;
  }

  tierNames(): string[] {
    return Object.keys(this.tiers);
  }

  tierLimits(tier: string): TierLimits | undefined {
    return this.tiers[tier];
  }

  /**
   * After a change of tier or limits in MongoDB: the plan held in Redis is replaced at once,
   * so every instance applies it to its next request. Should Redis miss the write, the stale
   * plan is re-read from MongoDB within PLAN_CACHE_MS.
   */
  async planChanged(userId: string): Promise<void> {
    this.planCache.delete(userId);
    if (!this.planSource || !this.redis.isReady) return;
    try {
      await this.pushPlan(userId);
    } catch (error) {
      this.logger.warn(`Plan of ${userId} not written to Redis (${(error as Error).message}); other instances follow within PLAN_CACHE_MS`);
    }
  }

  async planOf(userId: string): Promise<UserPlan> {
    const cached = this.planCache.get(userId);
    const now = this.clock.now();
    if (cached && cached.expires > now) return cached.plan;
    let stored: StoredPlan;
    try {
      stored = this.planSource ? await this.planSource.planOf(userId) : {};
    } catch (error) {
      // MongoDB is down: keep serving on the last known plan (else the default tier), without caching the guess.
      const fallback = cached?.plan ?? { tier: this.config.DEFAULT_TIER, limits: effectiveLimits(this.tiers[this.config.DEFAULT_TIER]) };
      this.logger.warn(`Plan of ${userId} could not be read (${(error as Error).message}); using tier ${fallback.tier}${cached ? ' (last known)' : ''}`);
      return fallback;
    }
    return this.remember(userId, this.resolve(stored), now);
  }

  async reserve(request: ReservationRequest): Promise<Reservation> {
    const [reservation] = await this.reserveParts(request.userId, [request], request.microsPerToken);
    return reservation;
  }

  /**
   * Reserves every call of one request in one step: all parts are held, or the request is
   * refused (429) before any of them is made. Part i's max_tokens may come back lowered
   * (the last parts first) when a limit leaves less room than asked.
   */
  async reserveParts(userId: string, parts: ReservationPart[], microsPerToken: number): Promise<Reservation[]> {
    const id = randomUUID();
    const open = (plan: UserPlan, enforced = false) =>
      parts.map((part, index) => ({
        id: `${id}#${index + 1}`,
        userId,
        tokens: 0,
        enforced,
        maxCompletionTokens: part.maxCompletionTokens,
        plan,
      }));
    if (!this.redis.isReady) return this.unenforced(await this.planOf(userId), open);

    let now = this.clock.now();
    const waitUntil = now + this.config.LIMIT_QUEUE_MS;
    const keys = this.keys(userId, now);
    let minTokens = 0;
    const bounds = parts.flatMap((part) => {
      const hold = part.reserveCompletionTokens ?? part.maxCompletionTokens;
      minTokens += part.promptTokens + Math.min(MIN_COMPLETION_TOKENS, hold);
      return [part.promptTokens + Math.min(MIN_COMPLETION_TOKENS, hold), part.promptTokens + hold];
    });
    try {
      for (let attempt = 0; attempt < 2; attempt += 1) {
        const result = await (this.redis.client as RedisWithScripts).tlReserve(
          keys.window, keys.day, keys.month, keys.reservations, keys.plan,
          now, id, microsPerToken, this.reservationTtlMs, WINDOW_MS, parts.length, ...bounds,
        );
        const code = Number(result[0]);
        if (code === -1) {
          await this.seed(userId, keys, now, Number(result[1]) === 1);
          continue;
        }
        const plan = this.remember(userId, planFromFields(result.slice(1, 6)), now);
        if (Number(result[6]) === 1) this.refreshInBackground(userId);
        const tail = result.slice(7);
        if (code === 0) {
          const limit = tail[0] as LimitName;
          const [current, max, held] = [Number(tail[1]), Number(tail[2]), Number(tail[3])];
          // Room that only other requests' reservations fill frees up when they settle (to their
          // usually far smaller actual usage): wait for it rather than refuse a burst wholesale.
          const need = limit === 'monthly_cost' ? Math.ceil(minTokens * microsPerToken) : minTokens;
          if (held > 0 && current - held + need <= max && this.clock.now() < waitUntil) {
            await new Promise((resolve) => setTimeout(resolve, 10 + Math.random() * 40));
            now = this.clock.now();
            attempt -= 1;
            continue;
          }
          throw new TokenLimitExceededException(limit, current, max, await this.resetOf(limit, userId, now), now);
        }
        if (code === 2) return open(plan);
        const held = this.live.get(userId) ?? new Map<string, string>();
        this.live.set(userId, held);
        const expires = now + this.reservationTtlMs;
        return open(plan, true).map((reservation, index) => {
          const granted = Number(tail[index]);
          held.set(reservation.id, `${granted}:${Math.ceil(granted * microsPerToken)}:${expires}`);
          return { ...reservation, tokens: granted, maxCompletionTokens: granted - parts[index].promptTokens };
        });
      }
      throw new Error('counters could not be seeded');
    } catch (error) {
      if (error instanceof HttpException) throw error;
      this.logger.warn(`Limit check for ${userId} failed (${(error as Error).message})`);
      return this.unenforced(await this.planOf(userId), open);
    }
  }

  /**
   * Records actual usage (feeding the rolling window) and releases the reservation.
   * Never throws: without Redis the window reports trackingEnabled false.
   */
  async settle(userId: string, tokens: number, costMicros: number, reservation?: Reservation): Promise<SettledWindow> {
    const untracked: SettledWindow = { ...UNTRACKED_WINDOW, dayTokens: null, monthCostMicros: null };
    if (reservation) this.forgetLive(reservation);
    if (!this.redis.isReady) return untracked;
    const now = this.clock.now();
    const keys = this.keys(userId, now);
    try {
      const [current, start, day, month] = await (this.redis.client as RedisWithScripts).tlSettle(
        keys.window, keys.day, keys.month, keys.reservations, keys.plan, keys.unseeded,
        reservation?.enforced ? reservation.id : '', tokens, costMicros, WINDOW_MS, DAY_TTL_SECONDS, MONTH_TTL_SECONDS, now, PLAN_TTL_SECONDS,
      );
      if (Number(start) < 0) return untracked;
      return {
        trackingEnabled: true,
        currentUsage: Number(current),
        resetAt: new Date(Number(start) + WINDOW_MS),
        dayTokens: Number(day) < 0 ? null : Number(day),
        monthCostMicros: Number(month) < 0 ? null : Number(month),
      };
    } catch (error) {
      this.logger.warn(`Rolling window update for ${userId} failed (${(error as Error).message})`);
      return untracked;
    }
  }

  /** Releases a reservation whose call was never billed. */
  async release(reservation: Reservation): Promise<void> {
    this.forgetLive(reservation);
    if (!reservation.enforced || !this.redis.isReady) return;
    const keys = this.keys(reservation.userId, this.clock.now());
    await this.redis.client.hdel(keys.reservations, reservation.id).catch(() => undefined);
  }

  async window(userId: string): Promise<WindowState> {
    const state = await this.counters(userId);
    return state ? state.window : { trackingEnabled: false, currentUsage: 0, resetAt: null };
  }

  /**
   * Clears the user's rolling window. The time is kept in MongoDB too, so a window replayed after
   * Redis lost its data starts after it (if MongoDB cannot be written, that replay may bring the
   * cleared usage back: logged).
   */
  async resetWindow(userId: string): Promise<WindowState> {
    const now = this.clock.now();
    await this.planSource
      ?.recordWindowReset(userId, new Date(now))
      .catch((error: Error) => this.logger.warn(`Window reset of ${userId} not kept in MongoDB (${error.message}); a replay after a Redis data loss would not know it`));
    if (!this.redis.isReady) return { trackingEnabled: false, currentUsage: 0, resetAt: null };
    try {
      await this.redis.client.del(this.keys(userId, now).window);
      return { trackingEnabled: true, currentUsage: 0, resetAt: null };
    } catch {
      return { trackingEnabled: false, currentUsage: 0, resetAt: null };
    }
  }

  /** Window, limits and what remains of each, for headers, the usage endpoint and the dashboard. */
  async state(userId: string): Promise<LimitState> {
    const counters = await this.counters(userId);
    const plan = counters?.plan ?? (await this.planOf(userId));
    if (!counters) return limitState(plan, UNTRACKED_WINDOW, null, null);
    return limitState(plan, counters.window, counters.dayTokens, counters.monthCostMicros);
  }

  /**
   * The same figures as state(), from what a settle just returned: no Redis round trip, and
   * exactly the counters as this call left them (later calls may have moved them since).
   * Without a settle (nothing tracked), tracking is reported off.
   */
  async stateAfter(userId: string, settled: WindowState & Partial<Pick<SettledWindow, 'dayTokens' | 'monthCostMicros'>> | undefined): Promise<LimitState> {
    const plan = await this.planOf(userId);
    if (!settled) return limitState(plan, UNTRACKED_WINDOW, null, null);
    return limitState(plan, settled, settled.dayTokens ?? null, settled.monthCostMicros ?? null);
  }

  private unenforced(plan: UserPlan, open: (plan: UserPlan) => Reservation[]): Reservation[] {
    if ((plan.limits.failMode ?? 'open') === 'closed') {
      throw new ServiceUnavailableException(
        `Usage limits cannot be checked right now (Redis unavailable) and tier ${plan.tier} fails closed; retry shortly`,
      );
    }
    return open(plan);
  }

  private forgetLive(reservation: Reservation): void {
    const held = this.live.get(reservation.userId);
    if (!held?.delete(reservation.id) || held.size > 0) return;
    this.live.delete(reservation.userId);
  }

  private resolve(stored: StoredPlan): UserPlan {
    const tier = stored.tier && this.tiers[stored.tier] ? stored.tier : this.config.DEFAULT_TIER;
    return { tier, limits: effectiveLimits(this.tiers[tier], stored.limits) };
  }

  private remember(userId: string, plan: UserPlan, now: number): UserPlan {
    this.planCache.set(userId, { plan, expires: now + this.config.PLAN_CACHE_MS });
    return plan;
  }

  /** Window, day and month counters and the plan held in Redis, in one round trip; undefined without Redis. */
  private async counters(userId: string) {
    if (!this.redis.isReady) return undefined;
    const now = this.clock.now();
    const keys = this.keys(userId, now);
    try {
      const result = await (this.redis.client as RedisWithScripts).tlState(keys.window, keys.day, keys.month, keys.reservations, keys.plan, now, WINDOW_MS);
      const [tokens, start, day, month] = result.slice(0, 4).map(Number);
      return {
        window: { trackingEnabled: true, currentUsage: tokens, resetAt: start < 0 ? null : new Date(start + WINDOW_MS) },
        dayTokens: day < 0 ? null : day,
        monthCostMicros: month < 0 ? null : month,
        plan: result.length > 4 ? this.remember(userId, planFromFields(result.slice(4, 9)), now) : undefined,
      };
    } catch {
      return undefined;
    }
  }

  /** Writes the plan as MongoDB has it to Redis (a user not seeded yet is left to the next seed). */
  private async pushPlan(userId: string): Promise<void> {
    const stored = await this.planSource!.planOf(userId);
    const now = this.clock.now();
    const plan = this.remember(userId, this.resolve(stored), now);
    await (this.redis.client as RedisWithScripts).tlPlan(this.keys(userId, now).plan, ...planArgs(plan), stored.version ?? 0, now + this.config.PLAN_CACHE_MS);
  }

  private refreshInBackground(userId: string): void {
    if (!this.planSource || this.refreshing.has(userId)) return;
    this.refreshing.add(userId);
    // MongoDB down: the plan held in Redis keeps serving (the last known plan, for every instance).
    void this.pushPlan(userId).then(
      () => this.refreshing.delete(userId),
      (error: Error) => {
        this.logger.warn(`Plan of ${userId} not refreshed (${error.message}); keeping the last known one`);
        // Tried again after a pause, not on every request of an outage.
        setTimeout(() => this.refreshing.delete(userId), REFRESH_RETRY_MS).unref();
      },
    );
  }

  /**
   * Seeds what Redis lacks from MongoDB: the plan, today's and this month's totals from the
   * ledger, and the rolling window replayed from the usage events of the last two windows.
   * Throws when MongoDB cannot be read (the caller then applies the tier's fail mode).
   */
  private async seed(userId: string, keys: ReturnType<UsageLimitsService['keys']>, now: number, lost: boolean): Promise<void> {
    const date = new Date(now);
    const source = this.planSource;
    const [stored, usage, moments] = source
      ? await Promise.all([
          source.planOf(userId),
          source.periodUsage(userId, this.calendar.dayKey(date), this.calendar.monthKey(date)),
          // Only a user whose plan is gone (Redis lost its data) needs the window replayed; a new day's counter does not.
          lost ? source.usageSince(userId, new Date(now - 2 * WINDOW_MS)) : [],
        ])
      : [{}, { dayTokens: 0, monthCostMicros: 0 }, []];
    const plan = this.remember(userId, this.resolve(stored), now);
    const resetAt = (stored as StoredPlan).windowResetAt?.getTime() ?? -Infinity;
    const window = replayWindow(moments.filter((moment) => moment.at > resetAt), now);
    const inFlight = [...(this.live.get(userId) ?? new Map<string, string>())].flat();
    await (this.redis.client as RedisWithScripts).tlSeed(
      keys.window, keys.day, keys.month, keys.reservations, keys.plan, keys.unseeded,
      ...planArgs(plan), (stored as StoredPlan).version ?? 0, now + this.config.PLAN_CACHE_MS, PLAN_TTL_SECONDS,
      usage.dayTokens, usage.monthCostMicros, window.tokens, window.start, WINDOW_MS, DAY_TTL_SECONDS, MONTH_TTL_SECONDS, now, ...inFlight,
    );
  }

  private async resetOf(limit: LimitName, userId: string, now: number): Promise<Date> {
    if (limit === 'daily_tokens') return this.calendar.nextDayStart(new Date(now));
    if (limit === 'monthly_cost') return this.calendar.nextMonthStart(new Date(now));
    const window = await this.window(userId);
    return window.resetAt ?? new Date(now + WINDOW_MS);
  }

  /** How long a reservation holds before it counts as a crashed request's and is dropped. */
  private get reservationTtlMs(): number {
    return this.config.AI_TIMEOUT_MS * 3;
  }

  private keys(userId: string, now: number) {
    const date = new Date(now);
    // The hash tag keeps one user's keys in one Cluster slot; REDIS_KEY_PREFIX is added by the client.
    const tag = `{${userId}}`;
    return {
      window: `${tag}:window`,
      day: `${tag}:day:${this.calendar.dayKey(date)}`,
      month: `${tag}:month:${this.calendar.monthKey(date)}`,
      reservations: `${tag}:reservations`,
      plan: `${tag}:plan`,
      unseeded: `${tag}:unseeded`,
    };
  }
}

/**
 * The rolling window as the settle script would have built it from these calls: a window
 * opens at a call made when none is open and lasts WINDOW_MS. Calls older than the replayed
 * span cannot open a window that is still open now.
 */
export function replayWindow(moments: UsageMoment[], now: number): { tokens: number; start: number } {
  let start = -1;
  let tokens = 0;
  for (const moment of moments) {
    if (start < 0 || moment.at - start >= WINDOW_MS) {
      start = moment.at;
      tokens = 0;
    }
    tokens += moment.tokens;
  }
  return start < 0 || now - start >= WINDOW_MS ? { tokens: 0, start: -1 } : { tokens, start };
}

function limitState(plan: UserPlan, window: WindowState, dayTokens: number | null, monthCostMicros: number | null): LimitState {
  const { limits } = plan;
  const state = { trackingEnabled: window.trackingEnabled, currentUsage: window.currentUsage, resetAt: window.resetAt, tier: plan.tier, limits };
  if (!window.trackingEnabled) return { ...state, remaining: null };
  return {
    ...state,
    remaining: {
      rolling24hTokens: limits.rolling24hTokens == null ? null : Math.max(0, limits.rolling24hTokens - window.currentUsage),
      dailyTokens: limits.dailyTokens == null ? null : Math.max(0, limits.dailyTokens - (dayTokens ?? 0)),
      monthlyCostUsd: limits.monthlyCostUsd == null ? null : Math.max(0, usdToMicros(limits.monthlyCostUsd) - (monthCostMicros ?? 0)) / 1e6,
    },
  };
}
