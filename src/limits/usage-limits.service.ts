import { HttpException, HttpStatus, Injectable, Logger, OnModuleInit, ServiceUnavailableException } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import type Redis from 'ioredis';
import { Clock } from '../common/clock';
import { usdToMicros } from '../common/money';
import { AppConfig } from '../config/app-config';
import { RedisService } from '../redis/redis.service';
import { UsageCalendar } from '../token-tracking/usage-calendar';
import { effectiveLimits, FailMode, parseTierTable, TierLimits, TierTable } from './tier-limits';
import { RESERVE_SCRIPT, SETTLE_SCRIPT, WINDOW_SCRIPT } from './usage-counters.lua';

export const WINDOW_MS = 24 * 60 * 60 * 1000;
const DAY_TTL_SECONDS = 2 * 24 * 3600;
const MONTH_TTL_SECONDS = 40 * 24 * 3600;
const UNTRACKED_WINDOW: WindowState = Object.freeze({ trackingEnabled: false, currentUsage: 0, resetAt: null });
/** Smallest completion worth calling the provider for when a limit forces max_tokens down. */
export const MIN_COMPLETION_TOKENS = 16;

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

export interface PlanSource {
  planOf(userId: string): Promise<{ tier?: string | null; limits?: TierLimits | null }>;
  periodUsage(userId: string, day: string, month: string): Promise<LedgerPeriodUsage>;
}

export interface ReservationRequest {
  userId: string;
  promptTokens: number;
  maxCompletionTokens: number;
  /** Upper bound on micro-USD per token for the model (its dearest price), for the cost limit. */
  microsPerToken: number;
}

export interface Reservation {
  id: string;
  userId: string;
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
  tlReserve(...args: (string | number)[]): Promise<[number, number | string, number?, number?]>;
  tlSettle(...args: (string | number)[]): Promise<[number, number, number, number]>;
  tlWindow(...args: (string | number)[]): Promise<[number, number]>;
};

/**
 * Limits enforced before money is spent: each provider call first reserves its
 * worst case (prompt + max_tokens) atomically in Redis against the rolling 24 h,
 * calendar-day and calendar-month limits; the reservation is settled to the actual
 * usage afterwards, which also feeds the rolling window.
 */
@Injectable()
export class UsageLimitsService implements OnModuleInit {
  private readonly logger = new Logger(UsageLimitsService.name);
  private readonly tiers: TierTable;
  private readonly calendar: UsageCalendar;
  private readonly planCache = new Map<string, { plan: UserPlan; expires: number }>();
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
    client.defineCommand('tlReserve', { numberOfKeys: 4, lua: RESERVE_SCRIPT });
    client.defineCommand('tlSettle', { numberOfKeys: 4, lua: SETTLE_SCRIPT });
    client.defineCommand('tlWindow', { numberOfKeys: 1, lua: WINDOW_SCRIPT });
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

  forgetPlan(userId: string): void {
    this.planCache.delete(userId);
  }

  async planOf(userId: string): Promise<UserPlan> {
    const cached = this.planCache.get(userId);
    const now = this.clock.now();
    if (cached && cached.expires > now) return cached.plan;
    let stored: Awaited<ReturnType<PlanSource['planOf']>>;
    try {
      stored = this.planSource ? await this.planSource.planOf(userId) : {};
    } catch (error) {
      // MongoDB is down: keep serving on the last known plan (else the default tier), without caching the guess.
      const fallback = cached?.plan ?? { tier: this.config.DEFAULT_TIER, limits: effectiveLimits(this.tiers[this.config.DEFAULT_TIER]) };
      this.logger.warn(`Plan of ${userId} could not be read (${(error as Error).message}); using tier ${fallback.tier}${cached ? ' (last known)' : ''}`);
      return fallback;
    }
    const tier = stored.tier && this.tiers[stored.tier] ? stored.tier : this.config.DEFAULT_TIER;
    const plan = { tier, limits: effectiveLimits(this.tiers[tier], stored.limits) };
    this.planCache.set(userId, { plan, expires: now + this.config.PLAN_CACHE_MS });
    return plan;
  }

  async reserve(request: ReservationRequest): Promise<Reservation> {
    const plan = await this.planOf(request.userId);
    const id = randomUUID();
    const base = { id, userId: request.userId, plan };
    const { limits } = plan;
    if (limits.rolling24hTokens == null && limits.dailyTokens == null && limits.monthlyCostUsd == null) {
      return { ...base, enforced: false, maxCompletionTokens: request.maxCompletionTokens };
    }
    if (!this.redis.isReady) return this.unenforced(base, request, limits.failMode);

    const now = this.clock.now();
    const keys = this.keys(request.userId, now);
    const want = request.promptTokens + request.maxCompletionTokens;
    const min = request.promptTokens + Math.min(MIN_COMPLETION_TOKENS, request.maxCompletionTokens);
    const monthlyMicros = limits.monthlyCostUsd == null ? -1 : usdToMicros(limits.monthlyCostUsd);
    try {
      for (let attempt = 0; attempt < 2; attempt += 1) {
        const result = await (this.redis.client as RedisWithScripts).tlReserve(
          keys.window, keys.day, keys.month, keys.reservations,
          now, id, min, want, request.microsPerToken,
          limits.rolling24hTokens ?? -1, limits.dailyTokens ?? -1, monthlyMicros,
          this.config.AI_TIMEOUT_MS * 3, limits.dailyTokens != null ? 1 : 0, monthlyMicros >= 0 ? 1 : 0, WINDOW_MS,
        );
        if (result[0] === 1) {
          return { ...base, enforced: true, maxCompletionTokens: Number(result[1]) - request.promptTokens };
        }
        if (result[0] === 0) {
          const limit = result[1] as LimitName;
          throw new TokenLimitExceededException(limit, Number(result[2]), Number(result[3]), await this.resetOf(limit, request.userId, now), now);
        }
        await this.seedPeriodCounters(request.userId, keys, now);
      }
      throw new Error('day/month counters could not be seeded');
    } catch (error) {
      if (error instanceof HttpException) throw error;
      this.logger.warn(`Limit check for ${request.userId} failed (${(error as Error).message})`);
      return this.unenforced(base, request, limits.failMode);
    }
  }

  /**
   * Records actual usage (feeding the rolling window) and releases the reservation.
   * Never throws: without Redis the window reports trackingEnabled false.
   */
  async settle(userId: string, tokens: number, costMicros: number, reservation?: Reservation): Promise<SettledWindow> {
    const untracked: SettledWindow = { ...UNTRACKED_WINDOW, dayTokens: null, monthCostMicros: null };
    if (!this.redis.isReady) return untracked;
    const now = this.clock.now();
    const keys = this.keys(userId, now);
    try {
      const [current, start, day, month] = await (this.redis.client as RedisWithScripts).tlSettle(
        keys.window, keys.day, keys.month, keys.reservations,
        reservation?.enforced ? reservation.id : '', tokens, costMicros, WINDOW_MS, DAY_TTL_SECONDS, MONTH_TTL_SECONDS, now,
      );
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
    if (!reservation.enforced || !this.redis.isReady) return;
    const keys = this.keys(reservation.userId, this.clock.now());
    await this.redis.client.hdel(keys.reservations, reservation.id).catch(() => undefined);
  }

  async window(userId: string): Promise<WindowState> {
    if (!this.redis.isReady) return { trackingEnabled: false, currentUsage: 0, resetAt: null };
    const now = this.clock.now();
    try {
      const [tokens, start] = await (this.redis.client as RedisWithScripts).tlWindow(this.keys(userId, now).window, now, WINDOW_MS);
      return { trackingEnabled: true, currentUsage: Number(tokens), resetAt: Number(start) < 0 ? null : new Date(Number(start) + WINDOW_MS) };
    } catch {
      return { trackingEnabled: false, currentUsage: 0, resetAt: null };
    }
  }

  async resetWindow(userId: string): Promise<WindowState> {
    if (!this.redis.isReady) return { trackingEnabled: false, currentUsage: 0, resetAt: null };
    try {
      await this.redis.client.del(this.keys(userId, this.clock.now()).window);
      return { trackingEnabled: true, currentUsage: 0, resetAt: null };
    } catch {
      return { trackingEnabled: false, currentUsage: 0, resetAt: null };
    }
  }

  /** Window, limits and what remains of each, for headers, the usage endpoint and the dashboard. */
  async state(userId: string): Promise<LimitState> {
    const plan = await this.planOf(userId);
    const window = await this.window(userId);
    if (!window.trackingEnabled) return limitState(plan, window, null, null);
    const now = this.clock.now();
    const keys = this.keys(userId, now);
    const [day, month] = await Promise.all([this.redis.client.get(keys.day), this.redis.client.get(keys.month)]).catch(() => [null, null]);
    return limitState(plan, window, day === null ? null : Number(day), month === null ? null : Number(month));
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

  private unenforced(base: Omit<Reservation, 'enforced' | 'maxCompletionTokens'>, request: ReservationRequest, failMode: FailMode | undefined): Reservation {
    if ((failMode ?? 'open') === 'closed') {
      throw new ServiceUnavailableException(
        `Usage limits cannot be checked right now (Redis unavailable) and tier ${base.plan.tier} fails closed; retry shortly`,
      );
    }
    return { ...base, enforced: false, maxCompletionTokens: request.maxCompletionTokens };
  }

  private async seedPeriodCounters(userId: string, keys: ReturnType<UsageLimitsService['keys']>, now: number): Promise<void> {
    const date = new Date(now);
    const usage = this.planSource
      ? await this.planSource.periodUsage(userId, this.calendar.dayKey(date), this.calendar.monthKey(date))
      : { dayTokens: 0, monthCostMicros: 0 };
    await this.redis.client
      .multi()
      .set(keys.day, usage.dayTokens, 'EX', DAY_TTL_SECONDS, 'NX')
      .set(keys.month, usage.monthCostMicros, 'EX', MONTH_TTL_SECONDS, 'NX')
      .exec();
  }

  private async resetOf(limit: LimitName, userId: string, now: number): Promise<Date> {
    if (limit === 'daily_tokens') return this.calendar.nextDayStart(new Date(now));
    if (limit === 'monthly_cost') return this.calendar.nextMonthStart(new Date(now));
    const window = await this.window(userId);
    return window.resetAt ?? new Date(now + WINDOW_MS);
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
    };
  }
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
