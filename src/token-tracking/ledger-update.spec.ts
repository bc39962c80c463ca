import { createUsageRecord } from '../../test/support/usage-record.factory';
import { ledgerUpdate } from './ledger-update';
import { UsageCalendar } from './usage-calendar';

describe('ledgerUpdate', () => {
  const calendar = new UsageCalendar('UTC');

  it('sums a user\'s records into one upsert and keeps their sessions and ids in order', () => {
    const first = createUsageRecord({ recordId: 'a', occurredAt: new Date('2026-10-31T23:00:00Z'), promptTokens: 10, completionTokens: 5, costMicros: 3 });
    const second = createUsageRecord({ recordId: 'b', occurredAt: new Date('2026-11-01T01:00:00Z'), promptTokens: 1, completionTokens: 2, embeddingTokens: 4, costMicros: 7, operationType: 'embedding' });
    const update = ledgerUpdate([first, second], calendar, 50);

    expect(update.$inc).toMatchObject({
      totalPromptTokens: 11,
      totalCompletionTokens: 7,
      totalEmbeddingTokens: 4,
      totalTokens: 22,
      totalCostMicros: 10,
      requestCount: 2,
      'dailyUsage.2026-10-31.totalTokens': 15,
      'dailyUsage.2026-11-01.totalTokens': 7,
      'dailyUsage.2026-11-01.operations.embedding': 1,
      'monthlyUsage.2026-10.requestCount': 1,
      'monthlyUsage.2026-11.costMicros': 7,
    });
    expect(update.$min).toEqual({ firstRequestAt: first.occurredAt, oldestDay: '2026-10-31' });
    expect(update.$max).toEqual({ lastRequestAt: second.occurredAt });
    expect(update.$push.recentSessions.$each.map((session: { recordId: string; totalTokens: number }) => [session.recordId, session.totalTokens])).toEqual([
      ['a', 15],
      ['b', 7],
    ]);
    expect(update.$push.recentSessions.$slice).toBe(-50);
    expect(update.$push.appliedRecordIds.$each).toEqual(['a', 'b']);
  });

  it('takes the earliest and latest time whatever the order the records came in', () => {
    const late = createUsageRecord({ occurredAt: new Date('2026-11-20T00:00:00Z') });
    const early = createUsageRecord({ occurredAt: new Date('2026-11-02T00:00:00Z') });
    const update = ledgerUpdate([late, early], calendar, 5);
    expect(update.$min).toEqual({ firstRequestAt: early.occurredAt, oldestDay: '2026-11-02' });
    expect(update.$max).toEqual({ lastRequestAt: late.occurredAt });
  });
});
