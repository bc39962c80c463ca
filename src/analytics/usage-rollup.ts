import type { OperationType } from '../token-tracking/usage-record';

/** Counters kept for every dimension value of a rollup document. */
export interface RollupMetrics {
  requests: number;
  failures: number;
  promptTokens: number;
  completionTokens: number;
  embeddingTokens: number;
  totalTokens: number;
  costMicros: number;
  /** Sum of response times, for averages. */
  latencyMs: number;
  cacheHits: number;
}

/** Seed 002's TokenUsageDoc figures, per tier. */
export interface TierMetrics {
  inputTokens: number;
  outputTokens: number;
  totalTokens: number;
  costMicros: number;
  requestCount: number;
}

/** Seed 002's ToolUsageDoc figures, per tool and tier (the average is derived on read). */
export interface ToolMetrics {
  callCount: number;
  successCount: number;
  failureCount: number;
  totalExecutionTimeMs: number;
}

export type Granularity = 'day' | 'month';

/** Maps keyed by escaped names (see escapeKey): operation -> model -> metrics, etc. */
export type CellMap = Record<string, Record<string, RollupMetrics>>;

/**
 * System-wide usage of one calendar day or month (collection usage_rollups), written by one
 * $inc upsert per event. Every dimension is a nested map, so a period query reads one
 * document per day (or month) whatever the traffic.
 */
export interface SystemRollup {
  _id: string;
  granularity: Granularity;
  period: string;
  totals: RollupMetrics;
  cells: CellMap;
  tiers: Record<string, TierMetrics>;
  providers: Record<string, RollupMetrics>;
  tools: Record<string, Record<string, ToolMetrics>>;
  updatedAt: Date;
}

/** One user's usage of one day or month (collection usage_user_rollups). */
export interface UserRollup {
  _id: string;
  granularity: Granularity;
  period: string;
  userId: string;
  totals: RollupMetrics;
  cells: CellMap;
  /** Day documents only: when the TTL monitor removes them. */
  expiresAt?: Date;
  updatedAt: Date;
}

/** What a rollup needs to know about one event. */
export interface RollupInput {
  operation: OperationType;
  model: string;
  provider: string;
  tier: string;
  promptTokens: number;
  completionTokens: number;
  embeddingTokens: number;
  costMicros: number;
  latencyMs: number;
  success: boolean;
  cacheHit: boolean;
  tool?: { name: string; executionTimeMs: number };
}

export const ZERO_METRICS: Readonly<RollupMetrics> = Object.freeze({
  requests: 0,
  failures: 0,
  promptTokens: 0,
  completionTokens: 0,
  embeddingTokens: 0,
  totalTokens: 0,
  costMicros: 0,
  latencyMs: 0,
  cacheHits: 0,
});

export const METRIC_FIELDS = Object.keys(ZERO_METRICS) as (keyof RollupMetrics)[];

/**
 * MongoDB field names may not contain '.' or start with '$', and model names, user ids and
 * tool names may: percent-encode those characters (and '%' itself) so the mapping is reversible.
 */
export function escapeKey(name: string): string {
  if (name.length === 0) return '%00';
  if (!/[%.$]/.test(name)) return name;
  return name.replace(/[%.$]/g, (char) => `%${char.charCodeAt(0).toString(16).toUpperCase().padStart(2, '0')}`);
}

export function unescapeKey(key: string): string {
  if (key === '%00') return '';
  return key.replace(/%(25|2E|24)/g, (_, hex: string) => String.fromCharCode(parseInt(hex, 16)));
}

export const systemRollupId = (granularity: Granularity, period: string) => `${granularity}:${period}`;
export const userRollupId = (granularity: Granularity, period: string, userId: string) => `${granularity}:${period}:${userId}`;

export function metricsOf(input: RollupInput): RollupMetrics {
  return {
    requests: 1,
    failures: input.success ? 0 : 1,
    promptTokens: input.promptTokens,
    completionTokens: input.completionTokens,
    embeddingTokens: input.embeddingTokens,
    totalTokens: input.promptTokens + input.completionTokens + input.embeddingTokens,
    costMicros: input.costMicros,
    latencyMs: input.latencyMs,
    cacheHits: input.cacheHit ? 1 : 0,
  };
}

function addMetricPaths(target: Record<string, number>, prefix: string, metrics: RollupMetrics): void {
  for (const field of METRIC_FIELDS) target[`${prefix}.${field}`] = metrics[field];
}

/** The $inc of a user rollup for one event: totals and the operation x model cell. */
export function userRollupIncrements(input: RollupInput): Record<string, number> {
  const metrics = metricsOf(input);
  const increments: Record<string, number> = {};
  addMetricPaths(increments, 'totals', metrics);
  addMetricPaths(increments, `cells.${input.operation}.${escapeKey(input.model)}`, metrics);
  return increments;
}

/** The $inc of a system rollup for one event: totals, operation x model, tier, provider and tool. */
export function systemRollupIncrements(input: RollupInput): Record<string, number> {
  const metrics = metricsOf(input);
  const increments = userRollupIncrements(input);
  addMetricPaths(increments, `providers.${escapeKey(input.provider)}`, metrics);
  const tier = `tiers.${escapeKey(input.tier)}`;
  increments[`${tier}.inputTokens`] = input.promptTokens + input.embeddingTokens;
  increments[`${tier}.outputTokens`] = input.completionTokens;
  increments[`${tier}.totalTokens`] = metrics.totalTokens;
  increments[`${tier}.costMicros`] = input.costMicros;
  increments[`${tier}.requestCount`] = 1;
  if (input.tool) {
    const tool = `tools.${escapeKey(input.tool.name)}.${escapeKey(input.tier)}`;
    increments[`${tool}.callCount`] = 1;
    increments[`${tool}.successCount`] = input.success ? 1 : 0;
    increments[`${tool}.failureCount`] = input.success ? 0 : 1;
    increments[`${tool}.totalExecutionTimeMs`] = input.tool.executionTimeMs;
  }
  return increments;
}

export function addMetrics(a: RollupMetrics, b: Partial<RollupMetrics> | undefined): RollupMetrics {
  return addFields(a, b);
}

export interface CellFilter {
  operation?: string;
  model?: string;
}

/** Visits every operation x model cell that passes the filter, with unescaped names. */
export function forEachCell(
  cells: CellMap | undefined,
  filter: CellFilter,
  visit: (operation: string, model: string, metrics: RollupMetrics) => void,
): void {
  for (const [operation, models] of Object.entries(cells ?? {})) {
    if (filter.operation !== undefined && operation !== filter.operation) continue;
    for (const [modelKey, metrics] of Object.entries(models ?? {})) {
      const model = unescapeKey(modelKey);
      if (filter.model !== undefined && model !== filter.model) continue;
      visit(operation, model, metrics);
    }
  }
}

/** Totals of a document under a filter: its stored totals when unfiltered, else the sum of matching cells. */
export function filteredTotals(document: { totals?: RollupMetrics; cells?: CellMap } | undefined, filter: CellFilter): RollupMetrics {
  if (!document) return { ...ZERO_METRICS };
  if (filter.operation === undefined && filter.model === undefined) return addMetrics({ ...ZERO_METRICS }, document.totals);
  let total: RollupMetrics = { ...ZERO_METRICS };
  forEachCell(document.cells, filter, (_operation, _model, metrics) => (total = addMetrics(total, metrics)));
  return total;
}

/** Sums a map of metrics across documents, unescaping the keys. */
export function mergeMaps<T extends object>(maps: (Record<string, T> | undefined)[], add: (a: T, b: T) => T, zero: () => T): Map<string, T> {
  const merged = new Map<string, T>();
  for (const map of maps) {
    for (const [key, value] of Object.entries(map ?? {})) {
      const name = unescapeKey(key);
      merged.set(name, add(merged.get(name) ?? zero(), value));
    }
  }
  return merged;
}

export const ZERO_TIER: Readonly<TierMetrics> = Object.freeze({ inputTokens: 0, outputTokens: 0, totalTokens: 0, costMicros: 0, requestCount: 0 });
export const ZERO_TOOL: Readonly<ToolMetrics> = Object.freeze({ callCount: 0, successCount: 0, failureCount: 0, totalExecutionTimeMs: 0 });

export function addFields<T extends object>(a: T, b: Partial<T> | undefined): T {
  if (!b) return a;
  const sum = { ...a } as Record<string, number>;
  for (const key of Object.keys(sum)) sum[key] += (b as Record<string, number | undefined>)[key] ?? 0;
  return sum as T;
}

/** The $inc that moves one event's cost by `deltaMicros` in a rollup document (re-pricing); tokens and counts stay. */
export function costCorrectionIncrements(input: Pick<RollupInput, 'operation' | 'model' | 'provider' | 'tier'>, deltaMicros: number, system: boolean): Record<string, number> {
  const increments: Record<string, number> = {
    'totals.costMicros': deltaMicros,
    [`cells.${input.operation}.${escapeKey(input.model)}.costMicros`]: deltaMicros,
  };
  if (system) {
    increments[`providers.${escapeKey(input.provider)}.costMicros`] = deltaMicros;
    increments[`tiers.${escapeKey(input.tier)}.costMicros`] = deltaMicros;
  }
  return increments;
}
