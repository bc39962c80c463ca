import { OPERATION_TYPES, OperationType } from '../token-tracking/usage-record';

/**
 * Tokens one operation of each type is expected to use (seed 004: embeddings 5-50 tokens,
 * RAG answers 1,000-3,000+). An operation above HIGH_USAGE_MULTIPLIER times this is flagged.
 * Tool calls carry no tokens and are never flagged.
 */
export const DEFAULT_EXPECTED_TOKENS: Readonly<Record<OperationType, number>> = Object.freeze({
  chat_intent: 500,
  chat_info: 4_000,
  chat_modification: 8_000,
  plugin_generation: 12_000,
  code_generation: 8_000,
  prompt_enhancement: 2_000,
  embedding: 50,
  batch_embedding: 20_000,
  rag_answer: 3_000,
  rag_streaming: 3_000,
  tool_call: 0,
  orcha_chat: 4_000,
  chat_completion: 4_000,
});

/** DEFAULT_EXPECTED_TOKENS with the HIGH_USAGE_EXPECTED_TOKENS overrides; throws a message naming the bad entry. */
export function parseExpectedTokens(json: string | undefined): Record<OperationType, number> {
  const expected = { ...DEFAULT_EXPECTED_TOKENS };
  if (!json) return expected;
  let raw: unknown;
  try {
    raw = JSON.parse(json);
  } catch (error) {
    throw new Error(`HIGH_USAGE_EXPECTED_TOKENS is not valid JSON: ${(error as Error).message}`);
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new Error('HIGH_USAGE_EXPECTED_TOKENS must be a JSON object of operation type -> tokens');
  for (const [operation, tokens] of Object.entries(raw)) {
    if (!(OPERATION_TYPES as readonly string[]).includes(operation)) {
      throw new Error(`HIGH_USAGE_EXPECTED_TOKENS: unknown operation type "${operation}" (known: ${OPERATION_TYPES.join(', ')})`);
    }
    if (typeof tokens !== 'number' || !Number.isInteger(tokens) || tokens < 0) {
      throw new Error(`HIGH_USAGE_EXPECTED_TOKENS.${operation} must be a non-negative integer (got ${JSON.stringify(tokens)})`);
    }
    expected[operation as OperationType] = tokens;
  }
  return expected;
}

/** The token count above which an operation counts as high usage, or null when its type is never flagged. */
export function highUsageThreshold(expected: Record<OperationType, number>, multiplier: number, operation: OperationType): number | null {
  const tokens = expected[operation];
  return tokens > 0 ? Math.ceil(tokens * multiplier) : null;
}
