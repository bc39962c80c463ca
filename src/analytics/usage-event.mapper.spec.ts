import { csvCell, CSV_COLUMNS, toCsv, toUsageEventView } from './usage-event.mapper';
import type { UsageEvent } from './usage-event.schema';

describe('usage event mapping', () => {
  const event: UsageEvent = {
    _id: 'rec-1',
    timestamp: new Date('2026-05-04T10:30:45.123Z'),
    user_id: 'user123',
    operation_type: 'rag_answer',
    query: 'What is the meaning of life?',
    model_name: 'gpt-4o-mini',
    prompt_tokens: 1250,
    completion_tokens: 150,
    embedding_tokens: 0,
    total_tokens: 1400,
    cost_micros: 285,
    cost_estimate: 0.000285,
    response_time: 2.34,
    success: false,
    error_message: 'timeout, "retried"',
    provider: 'openrouter',
    tier: 'FREE',
    costSource: 'catalog',
    estimated: false,
    cacheHit: false,
    requestId: null,
  };

  it('shows the seed 004 log fields first', () => {
    const view = toUsageEventView(event);
    expect(Object.keys(view).slice(0, 12)).toEqual([
      'timestamp', 'user_id', 'operation_type', 'query', 'model_name', 'prompt_tokens', 'completion_tokens',
      'total_tokens', 'cost_estimate', 'response_time', 'success', 'error_message',
    ]);
    expect(view).toMatchObject({ timestamp: '2026-05-04T10:30:45.123Z', record_id: 'rec-1', cost_micros: 285 });
  });

  it.each([
    ['plain', 'plain'],
    ['a,b', '"a,b"'],
    ['say "hi"', '"say ""hi"""'],
    ['line\nbreak', '"line\nbreak"'],
    ['=HYPERLINK("x")', `"'=HYPERLINK(""x"")"`],
    ['+1', "'+1"],
    [-5, '-5'],
    [null, ''],
    [true, 'true'],
  ])('writes %p as the CSV cell %p', (value, cell) => {
    expect(csvCell(value)).toBe(cell);
  });

  it('writes a header and one CRLF-terminated row per event, without the query', () => {
    const csv = toCsv([toUsageEventView(event)]);
    const [header, row, rest] = csv.split('\r\n');
    expect(header).toBe(CSV_COLUMNS.join(','));
    expect(header).not.toContain('query');
    expect(row.startsWith('rec-1,2026-05-04T10:30:45.123Z,user123,rag_answer,gpt-4o-mini,openrouter,FREE,1250,150,0,1400,285,0.000285,catalog,,,,,false,false,2.34,false,"timeout, ""retried""",,')).toBe(true);
    expect(rest).toBe('');
  });
});
