import { summariseTracking } from './token-usage-summary';
import { LedgerTotals, TrackResult } from './usage-record';

const totals = (totalTokens: number, requestCount: number): LedgerTotals => ({
  promptTokens: Math.floor(totalTokens / 2),
  completionTokens: totalTokens - Math.floor(totalTokens / 2),
  embeddingTokens: 0,
  totalTokens,
  costMicros: 0,
  requestCount,
});

const tracked = (before: LedgerTotals, delta: LedgerTotals): TrackResult => ({
  trackingEnabled: true,
  before,
  delta,
  after: {
    promptTokens: before.promptTokens + delta.promptTokens,
    completionTokens: before.completionTokens + delta.completionTokens,
    embeddingTokens: 0,
    totalTokens: before.totalTokens + delta.totalTokens,
    costMicros: 0,
    requestCount: before.requestCount + delta.requestCount,
  },
});

describe('summariseTracking', () => {
  it('sums every call of the request and reports the totals after the last one', () => {
    const first = tracked(totals(1000, 10), totals(30, 1));
    const second = tracked(first.trackingEnabled ? first.after : totals(0, 0), totals(55, 1));
    expect(summariseTracking([first, second])).toEqual({
      promptTokens: 542,
      completionTokens: 543,
      totalTokens: 1085,
      requestCount: 12,
      tokensUsedThisRequest: 85,
      trackingEnabled: true,
    });
  });

  it('flags a partial ledger failure but keeps the per-request count exact', () => {
    const ok = tracked(totals(100, 1), totals(40, 1));
    const failed: TrackResult = { trackingEnabled: false, delta: totals(60, 1), error: 'down' };
    const summary = summariseTracking([ok, failed]);
    expect(summary.tokensUsedThisRequest).toBe(100);
    expect(summary.trackingEnabled).toBe(false);
    expect(summary.totalTokens).toBe(140);
  });

  it('falls back to the request figures when nothing reached the ledger', () => {
    const failed: TrackResult = { trackingEnabled: false, delta: totals(60, 1), error: 'down' };
    expect(summariseTracking([failed])).toEqual({
      promptTokens: 30,
      completionTokens: 30,
      totalTokens: 60,
      requestCount: 1,
      tokensUsedThisRequest: 60,
      trackingEnabled: false,
    });
  });
});
