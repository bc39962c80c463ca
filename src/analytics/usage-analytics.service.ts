import { BadRequestException, Injectable } from '@nestjs/common';
import { InjectModel } from '@nestjs/mongoose';
import type { Document, Filter } from 'mongodb';
import { Model } from 'mongoose';
import { Clock } from '../common/clock';
import { AppConfig } from '../config/app-config';
import { UsageCalendar } from '../token-tracking/usage-calendar';
import {
  DailyUsageStatsDto,
  RecentUsageResponseDto,
  SystemTokenUsageResponseDto,
  TokenUsageResponseDto,
  UsageStatsDto,
  UserUsageStatsDto,
} from './dto/search-token-usage.dto';
import {
  DimensionUsageDto,
  PeriodUsageDto,
  TierUsageDto,
  TopUserDto,
  ToolUsageDto,
  ToolUsageReportDto,
  UsageFiguresDto,
  UsageHistoryDto,
  UsageOverviewDto,
} from './dto/usage-stats.dto';
import { UsageEventsService } from './usage-events.service';
import { formatMoney, formatTokens } from '../dashboard/web/usage-format';
import { displayCost, ratio } from './usage-format';
import { lastDays, Period, PeriodRange, resolvePeriod } from './usage-period';
import {
  addFields,
  addMetrics,
  CellFilter,
  filteredTotals,
  forEachCell,
  mergeMaps,
  METRIC_FIELDS,
  RollupMetrics,
  SystemRollup,
  TierMetrics,
  ToolMetrics,
  unescapeKey,
  UserRollup,
  ZERO_METRICS,
  ZERO_TIER,
  ZERO_TOOL,
} from './usage-rollup';
import { UsageRollup, UserUsageRollup } from './usage-rollup.schema';

const TREND_DAYS = 30;
const TOP_USERS = 10;
const TOP_TOOLS = 5;

/**
 * Read side of usage analytics: every figure comes from the day and month rollup documents
 * (never from the raw events, except the recent-events list), so a period costs a handful of reads.
 */
@Injectable()
export class UsageAnalyticsService {
  private readonly calendar: UsageCalendar;

  constructor(
    @InjectModel(UsageRollup.name) private readonly rollups: Model<UsageRollup>,
    @InjectModel(UserUsageRollup.name) private readonly userRollups: Model<UserUsageRollup>,
    private readonly events: UsageEventsService,
    private readonly config: AppConfig,
    private readonly clock: Clock,
  ) {
    this.calendar = new UsageCalendar(config.USAGE_TIMEZONE);
  }

  // --- seed 004: /api/v1/search/token-usage ---------------------------------------

  async userUsage(user: string | undefined, days: number, filter: CellFilter): Promise<TokenUsageResponseDto> {
    await this.events.flushed();
    const userId = requireUser(user);
    const keys = lastDays(this.calendar, this.now(), days);
    const documents = await this.userDays(userId, keys);
    return {
      user_id: userId,
      days,
      from: keys[0],
      to: keys[keys.length - 1],
      timezone: this.calendar.timeZone,
      filters: { operation: filter.operation ?? null, model: filter.model ?? null },
      ...breakdown(documents, keys, filter),
    };
  }

  async systemUsage(user: string | undefined, days: number, filter: CellFilter, userLimit: number): Promise<SystemTokenUsageResponseDto> {
    await this.events.flushed();
    const keys = lastDays(this.calendar, this.now(), days);
    const userDocuments = user ? await this.userDays(user, keys) : [];
    const perUser = user ? sumPerUser(userDocuments, filter) : await this.perUser(keys, filter);
    const systemDocuments = user
      ? userDocuments
      : ((await this.rollups.collection.find({ granularity: 'day', period: { $in: keys } }).toArray()) as unknown as SystemRollup[]);
    // Calls made for no user are in the system aggregates only: their row is what no user accounts for.
    const unattributed = user ? undefined : unattributedMetrics(systemDocuments, perUser, filter);
    const rows: [string | null, RollupMetrics][] = [...perUser.entries(), ...(unattributed ? [[null, unattributed] as [null, RollupMetrics]] : [])];
    const byUser = rows
      .sort(([, a], [, b]) => b.costMicros - a.costMicros || b.totalTokens - a.totalTokens)
      .slice(0, userLimit)
      .map(([userId, metrics]): UserUsageStatsDto => ({ user_id: userId, ...toStats(metrics) }));
    const { totals, by_operation, by_model, by_day } = breakdown(systemDocuments, keys, filter);
    return {
      days,
      from: keys[0],
      to: keys[keys.length - 1],
      timezone: this.calendar.timeZone,
      filters: { user: user ?? null, operation: filter.operation ?? null, model: filter.model ?? null },
      totals,
      unique_users: perUser.size,
      by_operation,
      by_model,
      by_day,
      by_user: byUser,
    };
  }

  async recent(user: string | undefined, limit: number, filter: CellFilter): Promise<RecentUsageResponseDto> {
    const userId = requireUser(user);
    const page = await this.events.list({ userId, operation: filter.operation, model: filter.model }, limit);
    return { user_id: userId, count: page.events.length, operations: page.events };
  }

  // --- seed 002: /api/usage ---------------------------------------------------------

  async overview(period: Period): Promise<UsageOverviewDto> {
    await this.events.flushed();
    const range = resolvePeriod(period, this.calendar, this.now());
    const trendKeys = lastDays(this.calendar, this.now(), TREND_DAYS);
    const [documents, trendDocuments, users, unpriced] = await Promise.all([
      this.systemDocuments(range),
      this.systemDays(trendKeys, { period: 1, totals: 1 }),
      this.users(range, TOP_USERS),
      this.events.unpricedModels(range.from ? this.calendar.dayStart(range.from) : null),
    ]);
    const totals = documents.reduce((sum, document) => addMetrics(sum, document.totals), { ...ZERO_METRICS });
    const tools = toolRows(documents);
    const trendByDay = new Map(trendDocuments.map((document) => [document.period, document]));
    return {
      period,
      from: range.from,
      to: range.to,
      timezone: this.calendar.timeZone,
      currency: this.config.DISPLAY_CURRENCY,
      currencyRate: this.config.DISPLAY_CURRENCY_RATE,
      summary: {
        ...this.figures(totals),
        activeUsers: users.active,
        successRate: ratio(totals.requests - totals.failures, totals.requests),
        formatted: {
          totalTokens: formatTokens(totals.totalTokens),
          cost: formatMoney(displayCost(totals.costMicros, this.config.DISPLAY_CURRENCY_RATE).cost, this.config.DISPLAY_CURRENCY),
        },
      },
      byTier: this.tierRows(documents),
      toolUsage: tools,
      providers: this.dimensionRows(documents.map((document) => document.providers)).map(([provider, row]) => ({ provider, ...row })),
      models: this.dimensionRows(documents.map((document) => cellsBy(document, 'model'))).map(([model, row]) => ({ model, ...row })),
      operations: this.dimensionRows(documents.map((document) => cellsBy(document, 'operation'))).map(([operation, row]) => ({ operation, ...row })),
      dailyTrend: trendKeys.map((date) => ({ date, ...this.figures(trendByDay.get(date)?.totals) })),
      mostUsedTools: tools.slice(0, TOP_TOOLS),
      topUsers: users.top,
      unpricedModels: unpriced,
    };
  }

  async periodUsage(period: Period): Promise<PeriodUsageDto> {
    await this.events.flushed();
    const range = resolvePeriod(period, this.calendar, this.now());
    const [documents, users] = await Promise.all([this.systemDocuments(range), this.users(range, 1)]);
    const totals = documents.reduce((sum, document) => addMetrics(sum, document.totals), { ...ZERO_METRICS });
    return {
      period,
      from: range.from,
      to: range.to,
      currency: this.config.DISPLAY_CURRENCY,
      ...this.figures(totals),
      activeUsers: users.active,
      byTier: this.tierRows(documents),
    };
  }

  async history(days: number): Promise<UsageHistoryDto> {
    await this.events.flushed();
    const keys = lastDays(this.calendar, this.now(), days);
    const byDay = new Map((await this.systemDays(keys)).map((document) => [document.period, document]));
    return {
      days,
      from: keys[0],
      to: keys[keys.length - 1],
      currency: this.config.DISPLAY_CURRENCY,
      history: keys.map((date) => {
        const document = byDay.get(date);
        return { date, ...this.figures(document?.totals), byTier: document ? this.tierRows([document]) : [] };
      }),
    };
  }

  async toolReport(period: Period, limit?: number): Promise<ToolUsageReportDto> {
    await this.events.flushed();
    const range = resolvePeriod(period, this.calendar, this.now());
    const tools = toolRows(await this.systemDocuments(range));
    const calls = tools.reduce((sum, tool) => sum + tool.callCount, 0);
    const successes = tools.reduce((sum, tool) => sum + tool.successCount, 0);
    return {
      period,
      from: range.from,
      to: range.to,
      totalCalls: calls,
      successRate: ratio(successes, calls),
      tools: limit === undefined ? tools : tools.slice(0, limit),
    };
  }

  // --- reading rollups ----------------------------------------------------------------

  private now(): Date {
    return new Date(this.clock.now());
  }

  private systemDocuments(range: PeriodRange, projection?: Document): Promise<SystemRollup[]> {
    return this.rollups.collection.find(periodFilter(range), projection ? { projection } : {}).toArray() as unknown as Promise<SystemRollup[]>;
  }

  private systemDays(keys: string[], projection?: Document): Promise<SystemRollup[]> {
    return this.systemDocuments({ period: 'week', from: keys[0], to: keys[keys.length - 1], granularity: 'day', keys }, projection);
  }

  private userDays(userId: string, keys: string[]): Promise<UserRollup[]> {
    return this.userRollups.collection
      // A range, not $in: the userId index answers it (an $in on period would tempt a planner to the period index).
      .find({ userId, granularity: 'day', period: { $gte: keys[0], $lte: keys[keys.length - 1] } }, { projection: { userId: 1, period: 1, totals: 1, cells: 1 } })
      .toArray() as unknown as Promise<UserRollup[]>;
  }

  /** Each user's usage over some days: summed by the server unless an operation/model filter needs the cells. */
  private async perUser(keys: string[], filter: CellFilter): Promise<Map<string, RollupMetrics>> {
    const match = { granularity: 'day', period: { $in: keys } };
    if (filter.operation !== undefined || filter.model !== undefined) {
      const documents = await this.userRollups.collection.find(match, { projection: { userId: 1, cells: 1 } }).toArray();
      return sumPerUser(documents as unknown as UserRollup[], filter);
    }
    const sums = Object.fromEntries(METRIC_FIELDS.map((field) => [field, { $sum: `$totals.${field}` }]));
    const rows = await this.userRollups.collection.aggregate<RollupMetrics & { _id: string }>([{ $match: match }, { $group: { _id: '$userId', ...sums } }]).toArray();
    return new Map(rows.filter((row) => row.requests > 0).map(({ _id, ...metrics }) => [_id, addMetrics({ ...ZERO_METRICS }, metrics)]));
  }

  /** Distinct users of a period and the top `limit` of them by cost. */
  private async users(range: PeriodRange, limit: number): Promise<{ active: number; top: TopUserDto[] }> {
    const filter = periodFilter(range);
    type Row = { _id: string; totalTokens: number; requestCount: number; costMicros: number };
    let active: number;
    let rows: Row[];
    if (range.keys?.length === 1) {
      // One document per user per period: a count, and the (period, cost) index gives the top.
      const [count, documents] = await Promise.all([
        this.userRollups.collection.countDocuments(filter),
        this.userRollups.collection.find(filter, { projection: { userId: 1, totals: 1 } }).sort({ 'totals.costMicros': -1 }).limit(limit).toArray(),
      ]);
      active = count;
      rows = documents.map((document) => {
        const totals = (document.totals ?? {}) as Partial<RollupMetrics>;
        return { _id: String(document.userId), totalTokens: totals.totalTokens ?? 0, requestCount: totals.requests ?? 0, costMicros: totals.costMicros ?? 0 };
      });
    } else {
      // Several periods: one $group per user, then the count and the top from the same pass.
      const [result] = await this.userRollups.collection
        .aggregate<{ users: { n: number }[]; top: Row[] }>([
          { $match: filter },
          {
            $group: {
              _id: '$userId',
              totalTokens: { $sum: '$totals.totalTokens' },
              requestCount: { $sum: '$totals.requests' },
              costMicros: { $sum: '$totals.costMicros' },
            },
          },
          { $facet: { users: [{ $count: 'n' }], top: [{ $sort: { costMicros: -1, totalTokens: -1, _id: 1 } }, { $limit: limit }] } },
        ])
        .toArray();
      active = result?.users[0]?.n ?? 0;
      rows = result?.top ?? [];
    }
    return {
      active,
      top: rows.map((row) => ({
        userId: row._id,
        totalTokens: row.totalTokens,
        requestCount: row.requestCount,
        ...displayCost(row.costMicros, this.config.DISPLAY_CURRENCY_RATE),
      })),
    };
  }

  // --- shaping ------------------------------------------------------------------------

  private figures(metrics: Partial<RollupMetrics> | undefined): UsageFiguresDto {
    const m = addMetrics({ ...ZERO_METRICS }, metrics);
    return {
      inputTokens: m.promptTokens + m.embeddingTokens,
      outputTokens: m.completionTokens,
      totalTokens: m.totalTokens,
      requestCount: m.requests,
      ...displayCost(m.costMicros, this.config.DISPLAY_CURRENCY_RATE),
    };
  }

  private tierRows(documents: SystemRollup[]): TierUsageDto[] {
    const tiers = mergeMaps<TierMetrics>(documents.map((document) => document.tiers), addFields, () => ({ ...ZERO_TIER }));
    return [...tiers.entries()]
      .map(([tier, m]) => ({
        tier,
        inputTokens: m.inputTokens,
        outputTokens: m.outputTokens,
        totalTokens: m.totalTokens,
        requestCount: m.requestCount,
        ...displayCost(m.costMicros, this.config.DISPLAY_CURRENCY_RATE),
      }))
      .sort((a, b) => b.totalTokens - a.totalTokens || b.requestCount - a.requestCount || a.tier.localeCompare(b.tier));
  }

  private dimensionRows(maps: (Record<string, RollupMetrics> | undefined)[]): [string, DimensionUsageDto][] {
    const merged = mergeMaps<RollupMetrics>(maps, addMetrics, () => ({ ...ZERO_METRICS }));
    return [...merged.entries()]
      .sort(([nameA, a], [nameB, b]) => b.totalTokens - a.totalTokens || b.requests - a.requests || nameA.localeCompare(nameB))
      .map(([name, m]) => [name, { ...this.figures(m), failureCount: m.failures, avgLatencyMs: m.requests === 0 ? 0 : Math.round(m.latencyMs / m.requests) }]);
  }
}

/** The documents of a period: its keys, or every document of the granularity. Keys are listed ($in), not ranged, so index lookups stay exact. */
function periodFilter(range: PeriodRange): Filter<Document> {
  const filter: Filter<Document> = { granularity: range.granularity };
  if (range.keys) filter.period = range.keys.length === 1 ? range.keys[0] : { $in: range.keys };
  return filter;
}

function sumPerUser(documents: UserRollup[], filter: CellFilter): Map<string, RollupMetrics> {
  const perUser = new Map<string, RollupMetrics>();
  for (const document of documents) {
    const totals = filteredTotals(document, filter);
    if (totals.requests > 0) perUser.set(document.userId, addMetrics(perUser.get(document.userId) ?? { ...ZERO_METRICS }, totals));
  }
  return perUser;
}

function unattributedMetrics(
  systemDocuments: Parameters<typeof breakdown>[0],
  perUser: Map<string, RollupMetrics>,
  filter: CellFilter,
): RollupMetrics | undefined {
  const system = systemDocuments.reduce((sum, document) => addMetrics(sum, filteredTotals(document, filter)), { ...ZERO_METRICS });
  const attributed = [...perUser.values()].reduce((sum, metrics) => addMetrics(sum, metrics), { ...ZERO_METRICS });
  const rest = Object.fromEntries(METRIC_FIELDS.map((field) => [field, Math.max(0, system[field] - attributed[field])])) as unknown as RollupMetrics;
  return rest.requests > 0 ? rest : undefined;
}

function requireUser(user: string | undefined): string {
  if (!user) throw new BadRequestException('user is required: this API key is not bound to a user, so name the user whose usage you want');
  return user;
}

/** A document's cells summed by operation or by model, keyed like the other dimension maps (escaped). */
function cellsBy(document: SystemRollup, dimension: 'operation' | 'model'): Record<string, RollupMetrics> {
  const map: Record<string, RollupMetrics> = {};
  for (const [operation, models] of Object.entries(document.cells ?? {})) {
    for (const [model, metrics] of Object.entries(models ?? {})) {
      const key = dimension === 'operation' ? operation : model;
      map[key] = addMetrics(map[key] ?? { ...ZERO_METRICS }, metrics);
    }
  }
  return map;
}

function toolRows(documents: SystemRollup[]): ToolUsageDto[] {
  const tools = new Map<string, Map<string, ToolMetrics>>();
  for (const document of documents) {
    for (const [toolKey, tiers] of Object.entries(document.tools ?? {})) {
      const tool = unescapeKey(toolKey);
      const byTier = tools.get(tool) ?? new Map<string, ToolMetrics>();
      for (const [tierKey, metrics] of Object.entries(tiers ?? {})) {
        const tier = unescapeKey(tierKey);
        byTier.set(tier, addFields(byTier.get(tier) ?? { ...ZERO_TOOL }, metrics));
      }
      tools.set(tool, byTier);
    }
  }
  const average = (m: ToolMetrics) => (m.callCount === 0 ? 0 : Math.round(m.totalExecutionTimeMs / m.callCount));
  return [...tools.entries()]
    .map(([toolName, byTier]) => {
      const total = [...byTier.values()].reduce((sum, m) => addFields(sum, m), { ...ZERO_TOOL });
      return {
        toolName,
        ...total,
        successRate: ratio(total.successCount, total.callCount),
        avgExecutionTimeMs: average(total),
        byTier: [...byTier.entries()]
          .map(([tier, m]) => ({ tier, ...m, avgExecutionTimeMs: average(m) }))
          .sort((a, b) => b.callCount - a.callCount || a.tier.localeCompare(b.tier)),
      };
    })
    .sort((a, b) => b.callCount - a.callCount || a.toolName.localeCompare(b.toolName));
}

function toStats(m: RollupMetrics): UsageStatsDto {
  return {
    operations: m.requests,
    successful_operations: m.requests - m.failures,
    failed_operations: m.failures,
    prompt_tokens: m.promptTokens,
    completion_tokens: m.completionTokens,
    embedding_tokens: m.embeddingTokens,
    total_tokens: m.totalTokens,
    cost_estimate: m.costMicros / 1e6,
    cost_micros: m.costMicros,
    avg_response_time: m.requests === 0 ? 0 : Math.round(m.latencyMs / m.requests) / 1000,
    cache_hits: m.cacheHits,
  };
}

/** Totals, by operation, by model and by day of day documents, under an operation/model filter. */
function breakdown(
  documents: { period: string; totals?: RollupMetrics; cells?: Record<string, Record<string, RollupMetrics>> }[],
  keys: string[],
  filter: CellFilter,
): Pick<TokenUsageResponseDto, 'totals' | 'by_operation' | 'by_model' | 'by_day'> {
  let totals: RollupMetrics = { ...ZERO_METRICS };
  const byOperation = new Map<string, RollupMetrics>();
  const byModel = new Map<string, RollupMetrics>();
  const byDay = new Map<string, RollupMetrics>();
  for (const document of documents) {
    const day = filteredTotals(document, filter);
    byDay.set(document.period, addMetrics(byDay.get(document.period) ?? { ...ZERO_METRICS }, day));
    totals = addMetrics(totals, day);
    forEachCell(document.cells, filter, (operation, model, metrics) => {
      byOperation.set(operation, addMetrics(byOperation.get(operation) ?? { ...ZERO_METRICS }, metrics));
      byModel.set(model, addMetrics(byModel.get(model) ?? { ...ZERO_METRICS }, metrics));
    });
  }
  const ranked = (map: Map<string, RollupMetrics>) =>
    Object.fromEntries([...map.entries()].sort(([, a], [, b]) => b.totalTokens - a.totalTokens || b.requests - a.requests).map(([name, m]) => [name, toStats(m)]));
  return {
    totals: toStats(totals),
    by_operation: ranked(byOperation),
    by_model: ranked(byModel),
    by_day: keys.map((date): DailyUsageStatsDto => ({ date, ...toStats(byDay.get(date) ?? { ...ZERO_METRICS }) })),
  };
}
