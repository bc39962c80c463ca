import { crossedThresholds, parseBudgetAlerts } from './budget-alert-config';

describe('budget alert config', () => {
  it('is empty when unset', () => {
    expect(parseBudgetAlerts(undefined)).toEqual([]);
  });

  it('turns thresholds into rules in stored units', () => {
    const rules = parseBudgetAlerts(
      JSON.stringify({
        global: { dailyCostUsd: [5, 10], monthlyTokens: 1_000_000 },
        user: { dailyTokens: 5000, limitPercents: [80] },
        users: { 'vip@example.com': { monthlyCostUsd: 50 } },
      }),
    );
    expect(rules).toEqual([
      { scope: 'global', metric: 'cost_usd', period: 'day', kind: 'absolute', amount: 5_000_000 },
      { scope: 'global', metric: 'cost_usd', period: 'day', kind: 'absolute', amount: 10_000_000 },
      { scope: 'global', metric: 'tokens', period: 'month', kind: 'absolute', amount: 1_000_000 },
      { scope: 'user', metric: 'tokens', period: 'day', kind: 'absolute', amount: 5000 },
      { scope: 'user', metric: 'tokens', period: 'day', kind: 'percent_of_limit', percent: 80 },
      { scope: 'user', metric: 'cost_usd', period: 'month', kind: 'percent_of_limit', percent: 80 },
      { scope: 'user', userId: 'vip@example.com', metric: 'cost_usd', period: 'month', kind: 'absolute', amount: 50_000_000 },
    ]);
  });

  it.each([
    ['nope', 'not valid JSON'],
    ['[]', 'JSON object'],
    ['{"globl":{}}', 'unknown field(s): globl'],
    ['{"global":{"dailyCost":1}}', 'BUDGET_ALERTS.global has unknown field(s): dailyCost'],
    ['{"global":{"dailyCostUsd":-1}}', 'BUDGET_ALERTS.global.dailyCostUsd must be a positive number'],
    ['{"global":{"dailyTokens":1.5}}', 'whole tokens'],
    ['{"user":{"limitPercents":[]}}', 'limitPercents must not be empty'],
    ['{"users":{"bad id":{"dailyTokens":1}}}', 'users key "bad id"'],
  ])('rejects %s', (json, message) => {
    expect(() => parseBudgetAlerts(json)).toThrow(message);
  });

  it('finds the thresholds a scope stands at or above, percentages against the plan limits', () => {
    const rules = parseBudgetAlerts(JSON.stringify({ global: { dailyCostUsd: 1 }, user: { dailyTokens: 100, limitPercents: [50, 100] }, users: { other: { dailyTokens: 1 } } }));
    const crossed = crossedThresholds(
      rules,
      'u1',
      { global: { day: { totalTokens: 10, costMicros: 999_999 } }, user: { day: { totalTokens: 600, costMicros: 0 }, month: { totalTokens: 600, costMicros: 400_000 } } },
      { dailyTokens: 1000, monthlyCostUsd: 1 },
    );
    expect(crossed.map(({ rule, threshold }) => [rule.scope, rule.metric, rule.kind, threshold])).toEqual([
      ['user', 'tokens', 'absolute', 100],
      ['user', 'tokens', 'percent_of_limit', 500],
    ]);
    // Unlimited plans have no percentage thresholds; calls for no user have no user thresholds.
    expect(crossedThresholds(rules, 'u1', { global: {}, user: { day: { totalTokens: 99, costMicros: 0 } } }, { dailyTokens: null })).toEqual([]);
    expect(crossedThresholds(rules, undefined, { global: { day: { totalTokens: 0, costMicros: 1_000_000 } }, user: {} })).toHaveLength(1);
  });
});
