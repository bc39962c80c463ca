import { DEFAULT_TIERS, effectiveLimits, parseTierTable } from './tier-limits';

describe('tier limits', () => {
  it('uses FREE, JIVE and JIGGA by default', () => {
    expect(Object.keys(parseTierTable(undefined))).toEqual(['FREE', 'JIVE', 'JIGGA']);
  });

  it('parses a custom table', () => {
    const table = parseTierTable('{"BASIC":{"rolling24hTokens":500,"monthlyCostUsd":2.5,"failMode":"closed"}}');
    expect(table.BASIC).toEqual({ rolling24hTokens: 500, monthlyCostUsd: 2.5, failMode: 'closed' });
  });

  it.each([
    ['not json', 'not valid JSON'],
    ['[]', 'JSON object'],
    ['{}', 'at least one tier'],
    ['{"free":{}}', 'tier name "free"'],
    ['{"FREE":{"dailyTokens":-1}}', 'TIER_LIMITS.FREE'],
    ['{"FREE":{"dailyTokens":1.5}}', 'dailyTokens'],
    ['{"FREE":{"failMode":"sideways"}}', 'failMode'],
    ['{"FREE":{"tokensPerHour":5}}', 'tokensPerHour'],
  ])('rejects %s', (json, message) => {
    expect(() => parseTierTable(json)).toThrow(message);
  });

  it('lays user overrides over the tier, null meaning unlimited', () => {
    expect(effectiveLimits(DEFAULT_TIERS.FREE, { dailyTokens: 5, monthlyCostUsd: null })).toEqual({
      rolling24hTokens: 100_000,
      dailyTokens: 5,
      monthlyCostUsd: null,
      failMode: 'open',
    });
  });
});
