import type { SystemTokenUsageResponseDto, UsageStatsDto } from '../analytics/dto/search-token-usage.dto';
import { bar, renderUsageReport, sparkline } from './usage-report';

function stats(overrides: Partial<UsageStatsDto> = {}): UsageStatsDto {
  return {
    operations: 0,
    successful_operations: 0,
    failed_operations: 0,
    prompt_tokens: 0,
    completion_tokens: 0,
    embedding_tokens: 0,
    total_tokens: 0,
    cost_estimate: 0,
    cost_micros: 0,
    avg_response_time: 0,
    cache_hits: 0,
    ...overrides,
  };
}

function systemReport(days: { date: string; tokens: number }[]): SystemTokenUsageResponseDto {
  const rag = stats({ operations: 3, successful_operations: 2, failed_operations: 1, prompt_tokens: 1000, completion_tokens: 234, total_tokens: 1234, cost_estimate: 0.0123, cost_micros: 12300, avg_response_time: 1.5 });
  return {
    days: days.length,
    from: days[0].date,
    to: days[days.length - 1].date,
    timezone: 'UTC',
    filters: { user: null, operation: null, model: null },
    totals: rag,
    unique_users: 2,
    by_operation: { rag_answer: rag },
    by_model: { 'openai/gpt-4o-mini': rag },
    by_day: days.map(({ date, tokens }) => ({ date, ...stats({ operations: tokens > 0 ? 1 : 0, total_tokens: tokens }) })),
    by_user: [{ user_id: 'alice', ...rag }],
  };
}

describe('usage-report', () => {
  it('draws a sparkline with a dot for idle days, bucketing long ranges', () => {
    expect(sparkline([0, 1, 2, 4, 8])).toBe('·▁▂▄█');
    expect(sparkline([0, 0])).toBe('··');
    expect(sparkline(Array.from({ length: 120 }, (_, index) => index), 60)).toHaveLength(60);
  });

  it('draws bars in proportion, at least one block for any usage', () => {
    expect(bar(0, 10)).toBe('');
    expect(bar(1, 1000, 10)).toBe('█');
    expect(bar(5, 10, 10)).toBe('█████');
    expect(bar(10, 10, 10)).toBe('██████████');
  });

  it('renders totals, breakdowns, days and top users', () => {
    const output = renderUsageReport(systemReport([
      { date: '2030-06-14', tokens: 0 },
      { date: '2030-06-15', tokens: 1234 },
    ]));
    expect(output).toContain('Token usage, all users: last 2 days (2030-06-14 to 2030-06-15, UTC)');
    expect(output).toContain('Daily tokens  ·█  (2030-06-14 to 2030-06-15)');
    expect(output).toContain('│ Tokens         │ 1.2K (1,234: prompt 1,000, completion 234, embedding 0) │');
    expect(output).toContain('│ Estimated cost │ $0.0123');
    expect(output).toMatch(/│ rag_answer\s+│\s+3 │\s+1 │\s+1\.2K │\s+\$0\.0123 │\s+1\.5 s │/);
    expect(output).toMatch(/│ 2030-06-15 │\s+1 │\s+1\.2K │\s+\$0\.00 │ █{24} │/);
    expect(output).toMatch(/│ alice │\s+3 │\s+1\.2K │\s+\$0\.0123 │/);
    // Plain text: no colour codes in pipes and logs.
    expect(output).not.toMatch(/\u001b\[/);
  });

  it('lists only the days with usage past a month', () => {
    const days = Array.from({ length: 60 }, (_, index) => ({ date: `day-${String(index).padStart(2, '0')}`, tokens: index === 10 ? 500 : 0 }));
    const output = renderUsageReport(systemReport(days));
    expect(output).toContain('By day (days without usage left out)');
    expect(output).toContain('day-10');
    expect(output).not.toContain('day-11');
  });
});
