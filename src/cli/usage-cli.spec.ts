import type { UsageApiClient } from './usage-api.client';
import type { UsageCliOptions } from './usage-cli-options';
import { startOfDay, writeEventsCsv } from './usage-cli';
import type { UsageReport } from './usage-report';

describe('usage-cli', () => {
  it.each([
    ['2030-06-09', 'UTC', '2030-06-09T00:00:00.000Z'],
    ['2030-06-09', 'Africa/Johannesburg', '2030-06-08T22:00:00.000Z'],
    ['2030-01-15', 'America/New_York', '2030-01-15T05:00:00.000Z'],
    ['2030-07-15', 'America/New_York', '2030-07-15T04:00:00.000Z'],
    ['2030-06-09', 'Pacific/Kiritimati', '2030-06-08T10:00:00.000Z'],
  ])('finds the start of %s in %s', (day, zone, instant) => {
    expect(startOfDay(day, zone).toISOString()).toBe(instant);
  });

  it('writes every page of the events CSV under one header, from the start of the period', async () => {
    const pages = [
      { text: 'a,b\r\n1,2\r\n', nextCursor: 'c1' },
      { text: 'a,b\r\n3,4\r\n', nextCursor: 'c2' },
      { text: 'a,b\r\n5,6\r\n', nextCursor: null },
    ];
    const queries: Record<string, unknown>[] = [];
    const client = { csv: async (_path: string, query: Record<string, unknown>) => (queries.push(query), pages.shift()!) } as unknown as UsageApiClient;
    let written = '';
    const options = { days: 7, format: 'csv', operation: 'rag_answer' } as UsageCliOptions;
    const report = { user_id: 'alice', from: '2030-06-09', timezone: 'UTC' } as UsageReport;
    await writeEventsCsv(client, options, report, { writeOut: (text) => (written += text), writeErr: () => undefined });
    expect(written).toBe('a,b\r\n1,2\r\n3,4\r\n5,6\r\n');
    expect(queries.map((query) => query.cursor)).toEqual([undefined, 'c1', 'c2']);
    expect(queries[0]).toMatchObject({ user: 'alice', operation: 'rag_answer', from: '2030-06-09T00:00:00.000Z', limit: 5000 });
  });
});
