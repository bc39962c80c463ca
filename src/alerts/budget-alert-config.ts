import { USER_ID_PATTERN } from '../common/user-id';
import { usdToMicros } from '../common/money';
import type { TierLimits } from '../limits/tier-limits';

export type AlertScope = 'global' | 'user';
export type AlertMetric = 'cost_usd' | 'tokens';
export type AlertPeriod = 'day' | 'month';

/** Absolute thresholds; each may be one number or several (e.g. [5, 10]). */
export interface BudgetThresholds {
  dailyCostUsd?: number | number[];
  monthlyCostUsd?: number | number[];
  dailyTokens?: number | number[];
  monthlyTokens?: number | number[];
}

/**
 * BUDGET_ALERTS: `global` applies to all usage together, `user` to each user (absolute amounts,
 * and `limitPercents` of the user's own daily token and monthly cost limits), `users` to named users.
 */
export interface BudgetAlertConfig {
  global?: BudgetThresholds;
  user?: BudgetThresholds & { limitPercents?: number[] };
  users?: Record<string, BudgetThresholds>;
}

export interface ThresholdRule {
  scope: AlertScope;
  /** A named user's rule applies to that user only. */
  userId?: string;
  metric: AlertMetric;
  period: AlertPeriod;
  kind: 'absolute' | 'percent_of_limit';
  /** Absolute threshold in stored units: micro-USD for cost, tokens for tokens. */
  amount?: number;
  percent?: number;
}

/** Usage of one scope after an event, in stored units. */
export interface PeriodTotals {
  totalTokens: number;
  costMicros: number;
}

export interface CrossedThreshold {
  rule: ThresholdRule;
  /** In stored units. */
  threshold: number;
  observed: number;
  /** The plan limit a percentage refers to, in stored units. */
  limit?: number;
}

const THRESHOLD_FIELDS: Record<keyof BudgetThresholds, { metric: AlertMetric; period: AlertPeriod }> = {
  dailyCostUsd: { metric: 'cost_usd', period: 'day' },
  monthlyCostUsd: { metric: 'cost_usd', period: 'month' },
  dailyTokens: { metric: 'tokens', period: 'day' },
  monthlyTokens: { metric: 'tokens', period: 'month' },
};

const isObject = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value);

function amounts(value: unknown, label: string): number[] {
  const list = Array.isArray(value) ? value : [value];
  if (list.length === 0) throw new Error(`${label} must not be empty`);
  for (const item of list) {
    if (typeof item !== 'number' || !Number.isFinite(item) || item <= 0) throw new Error(`${label} must be a positive number or an array of them (got ${JSON.stringify(item)})`);
  }
  return list as number[];
}

function thresholdRules(value: unknown, label: string, base: Pick<ThresholdRule, 'scope' | 'userId'>, extra: string[] = []): ThresholdRule[] {
  if (!isObject(value)) throw new Error(`${label} must be an object`);
  const unknown = Object.keys(value).filter((key) => !(key in THRESHOLD_FIELDS) && !extra.includes(key));
  if (unknown.length > 0) throw new Error(`${label} has unknown field(s): ${unknown.join(', ')} (known: ${[...Object.keys(THRESHOLD_FIELDS), ...extra].join(', ')})`);
  const rules: ThresholdRule[] = [];
  for (const [field, { metric, period }] of Object.entries(THRESHOLD_FIELDS)) {
    if (value[field] === undefined) continue;
    for (const amount of amounts(value[field], `${label}.${field}`)) {
      if (metric === 'tokens' && !Number.isInteger(amount)) throw new Error(`${label}.${field} must be whole tokens (got ${amount})`);
      rules.push({ ...base, metric, period, kind: 'absolute', amount: metric === 'cost_usd' ? usdToMicros(amount) : amount });
    }
  }
  return rules;
}

/** Parses and validates BUDGET_ALERTS into rules; throws a message naming the bad field. */
export function parseBudgetAlerts(json: string | undefined): ThresholdRule[] {
  if (!json) return [];
  let raw: unknown;
  try {
    raw = JSON.parse(json);
  } catch (error) {
    throw new Error(`BUDGET_ALERTS is not valid JSON: ${(error as Error).message}`);
  }
  if (!isObject(raw)) throw new Error('BUDGET_ALERTS must be a JSON object with global, user and/or users');
  const unknown = Object.keys(raw).filter((key) => !['global', 'user', 'users'].includes(key));
  if (unknown.length > 0) throw new Error(`BUDGET_ALERTS has unknown field(s): ${unknown.join(', ')} (known: global, user, users)`);
  const rules: ThresholdRule[] = [];
  if (raw.global !== undefined) rules.push(...thresholdRules(raw.global, 'BUDGET_ALERTS.global', { scope: 'global' }));
  if (raw.user !== undefined) {
    rules.push(...thresholdRules(raw.user, 'BUDGET_ALERTS.user', { scope: 'user' }, ['limitPercents']));
    const percents = (raw.user as Record<string, unknown>).limitPercents;
    if (percents !== undefined) {
      for (const percent of amounts(percents, 'BUDGET_ALERTS.user.limitPercents')) {
        rules.push({ scope: 'user', metric: 'tokens', period: 'day', kind: 'percent_of_limit', percent });
        rules.push({ scope: 'user', metric: 'cost_usd', period: 'month', kind: 'percent_of_limit', percent });
      }
    }
  }
  if (raw.users !== undefined) {
    if (!isObject(raw.users)) throw new Error('BUDGET_ALERTS.users must be an object of userId -> thresholds');
    for (const [userId, thresholds] of Object.entries(raw.users)) {
      if (!USER_ID_PATTERN.test(userId)) throw new Error(`BUDGET_ALERTS.users key "${userId}" must match ${USER_ID_PATTERN.source}`);
      rules.push(...thresholdRules(thresholds, `BUDGET_ALERTS.users.${userId}`, { scope: 'user', userId }));
    }
  }
  return rules;
}

export interface AlertTotals {
  global: Partial<Record<AlertPeriod, PeriodTotals>>;
  user: Partial<Record<AlertPeriod, PeriodTotals>>;
}

/**
 * The thresholds at or above which a scope's usage now stands. Callers deduplicate per
 * threshold and period, so evaluating after every event is safe.
 */
export function crossedThresholds(rules: ThresholdRule[], userId: string | undefined, totals: AlertTotals, limits?: TierLimits | null): CrossedThreshold[] {
  const crossed: CrossedThreshold[] = [];
  for (const rule of rules) {
    if (rule.scope === 'user' && (!userId || (rule.userId !== undefined && rule.userId !== userId))) continue;
    const period = totals[rule.scope][rule.period];
    if (!period) continue;
    const observed = rule.metric === 'cost_usd' ? period.costMicros : period.totalTokens;
    if (rule.kind === 'absolute') {
      if (observed >= rule.amount!) crossed.push({ rule, threshold: rule.amount!, observed });
      continue;
    }
    const limit = rule.metric === 'tokens' ? limits?.dailyTokens : limits?.monthlyCostUsd == null ? null : usdToMicros(limits.monthlyCostUsd);
    if (limit == null || limit <= 0) continue;
    const threshold = Math.ceil((limit * rule.percent!) / 100);
    if (observed >= threshold) crossed.push({ rule, threshold, observed, limit });
  }
  return crossed;
}
