import {
  escapeKey,
  filteredTotals,
  RollupInput,
  systemRollupIncrements,
  unescapeKey,
  userRollupIncrements,
  ZERO_METRICS,
} from './usage-rollup';

const input = (overrides: Partial<RollupInput> = {}): RollupInput => ({
  operation: 'rag_answer',
  model: 'openai/gpt-4o-mini',
  provider: 'openrouter',
  tier: 'FREE',
  promptTokens: 100,
  completionTokens: 20,
  embeddingTokens: 0,
  costMicros: 27,
  latencyMs: 1500,
  success: true,
  cacheHit: false,
  ...overrides,
});

describe('usage rollups', () => {
  it.each(['gpt-3.5-turbo', 'a.b$c%d', '$start', 'user@example.com', '%2E', ''])('escapes %p into a valid field name and back', (name) => {
    const key = escapeKey(name);
    expect(key).not.toMatch(/[.$]/);
    expect(key.length).toBeGreaterThan(0);
    expect(unescapeKey(key)).toBe(name);
  });

  it('increments totals and the operation x model cell of a user rollup', () => {
    const inc = userRollupIncrements(input({ model: 'gpt-3.5-turbo', success: false }));
    expect(inc).toMatchObject({
      'totals.requests': 1,
      'totals.failures': 1,
      'totals.totalTokens': 120,
      'totals.costMicros': 27,
      'cells.rag_answer.gpt-3%2E5-turbo.promptTokens': 100,
      'cells.rag_answer.gpt-3%2E5-turbo.latencyMs': 1500,
    });
    expect(Object.keys(inc).some((path) => path.startsWith('tiers.'))).toBe(false);
  });

  it('adds tier (seed 002 figures), provider and tool increments to a system rollup', () => {
    const inc = systemRollupIncrements(
      input({ operation: 'tool_call', model: 'none', provider: 'tool', promptTokens: 0, completionTokens: 0, costMicros: 0, latencyMs: 840, tool: { name: 'search.web', executionTimeMs: 840 } }),
    );
    expect(inc).toMatchObject({
      'tiers.FREE.requestCount': 1,
      'tiers.FREE.totalTokens': 0,
      'providers.tool.requests': 1,
      'tools.search%2Eweb.FREE.callCount': 1,
      'tools.search%2Eweb.FREE.successCount': 1,
      'tools.search%2Eweb.FREE.failureCount': 0,
      'tools.search%2Eweb.FREE.totalExecutionTimeMs': 840,
    });
    const embedding = systemRollupIncrements(input({ operation: 'embedding', promptTokens: 0, completionTokens: 0, embeddingTokens: 30 }));
    expect(embedding).toMatchObject({ 'tiers.FREE.inputTokens': 30, 'tiers.FREE.outputTokens': 0, 'tiers.FREE.totalTokens': 30 });
  });

  it('totals a document under an operation and model filter from its cells', () => {
    const metrics = (tokens: number) => ({ ...ZERO_METRICS, requests: 1, totalTokens: tokens });
    const document = {
      totals: { ...ZERO_METRICS, requests: 3, totalTokens: 60 },
      cells: { rag_answer: { a: metrics(10), 'b%2Ec': metrics(20) }, embedding: { a: metrics(30) } },
    };
    expect(filteredTotals(document, {}).totalTokens).toBe(60);
    expect(filteredTotals(document, { operation: 'rag_answer' }).totalTokens).toBe(30);
    expect(filteredTotals(document, { model: 'a' }).totalTokens).toBe(40);
    expect(filteredTotals(document, { operation: 'rag_answer', model: 'b.c' }).totalTokens).toBe(20);
    expect(filteredTotals(undefined, {}).requests).toBe(0);
  });
});
