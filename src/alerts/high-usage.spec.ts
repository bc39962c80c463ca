import { DEFAULT_EXPECTED_TOKENS, highUsageThreshold, parseExpectedTokens } from './high-usage';

describe('high usage detection', () => {
  it('flags operations above the multiple of their expectation; never tool calls', () => {
    const expected = parseExpectedTokens('{"embedding":40}');
    expect(highUsageThreshold(expected, 5, 'embedding')).toBe(200);
    expect(highUsageThreshold(expected, 2.5, 'rag_answer')).toBe(DEFAULT_EXPECTED_TOKENS.rag_answer * 2.5);
    expect(highUsageThreshold(expected, 5, 'tool_call')).toBeNull();
  });

  it.each([
    ['x', 'not valid JSON'],
    ['{"searching":10}', 'unknown operation type "searching"'],
    ['{"embedding":-1}', 'embedding must be a non-negative integer'],
  ])('rejects %s', (json, message) => {
    expect(() => parseExpectedTokens(json)).toThrow(message);
  });
});
