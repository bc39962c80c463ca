export const OPERATION_TYPES = [
  'chat_intent',
  'chat_info',
  'chat_modification',
  'plugin_generation',
  'code_generation',
  'prompt_enhancement',
  'embedding',
  'batch_embedding',
  'rag_answer',
  'rag_streaming',
  'tool_call',
  'orcha_chat',
  'chat_completion',
] as const;
export type OperationType = (typeof OPERATION_TYPES)[number];

export const COST_SOURCES = ['provider', 'catalog', 'genai-prices', 'unpriced'] as const;
export type CostSource = (typeof COST_SOURCES)[number];

/** One billed provider call (or cache hit), as the ledger records it. */
export interface UsageRecord {
  /** Unique per record; makes replays idempotent. Generated when absent. */
  recordId?: string;
  operationType: OperationType;
  model: string;
  provider: string;
  promptTokens: number;
  completionTokens: number;
  embeddingTokens?: number;
  /** Parts of promptTokens read from / written to the provider's prompt cache. */
  cachedTokens?: number;
  cacheWriteTokens?: number;
  /** Part of completionTokens spent on reasoning. */
  reasoningTokens?: number;
  /** Integer micro-USD (1 USD = 1,000,000). */
  costMicros: number;
  costSource: CostSource;
  /** The price list and entry that priced it (see PriceQuote), so a bill can be explained line by line. */
  priceVersion?: string;
  priceEntry?: string;
  /** True when any count came from the tokenizer instead of the provider. */
  estimated?: boolean;
  latencyMs: number;
  success: boolean;
  errorMessage?: string;
  requestId?: string;
  occurredAt?: Date;
  /** What was asked (the last user message or embedded text), for the usage event; truncated there. */
  query?: string;
}

export interface LedgerTotals {
  promptTokens: number;
  completionTokens: number;
  embeddingTokens: number;
  totalTokens: number;
  costMicros: number;
  requestCount: number;
}

/** The user's 24-hour rolling window after a record (seed 000 semantics). */
export interface WindowSnapshot {
  trackingEnabled: boolean;
  currentUsage: number;
  resetAt: Date | null;
  /** Today's and this month's limit counters as the settle left them (null: not seeded). */
  dayTokens?: number | null;
  monthCostMicros?: number | null;
}

export type TrackResult = (
  | { trackingEnabled: true; before: LedgerTotals; after: LedgerTotals; delta: LedgerTotals }
  /** queued: the record is durably in the outbox and will reach the ledger once it is back. */
  | { trackingEnabled: false; delta: LedgerTotals; error: string; queued?: boolean }
) & { window?: WindowSnapshot };

export const ZERO_TOTALS: Readonly<LedgerTotals> = Object.freeze({
  promptTokens: 0,
  completionTokens: 0,
  embeddingTokens: 0,
  totalTokens: 0,
  costMicros: 0,
  requestCount: 0,
});

export function totalsOf(record: UsageRecord): LedgerTotals {
  const embeddingTokens = record.embeddingTokens ?? 0;
  return {
    promptTokens: record.promptTokens,
    completionTokens: record.completionTokens,
    embeddingTokens,
    totalTokens: record.promptTokens + record.completionTokens + embeddingTokens,
    costMicros: record.costMicros,
    requestCount: 1,
  };
}

export function addTotals(a: LedgerTotals, b: LedgerTotals): LedgerTotals {
  return {
    promptTokens: a.promptTokens + b.promptTokens,
    completionTokens: a.completionTokens + b.completionTokens,
    embeddingTokens: a.embeddingTokens + b.embeddingTokens,
    totalTokens: a.totalTokens + b.totalTokens,
    costMicros: a.costMicros + b.costMicros,
    requestCount: a.requestCount + b.requestCount,
  };
}

export function subtractTotals(a: LedgerTotals, b: LedgerTotals): LedgerTotals {
  return {
    promptTokens: a.promptTokens - b.promptTokens,
    completionTokens: a.completionTokens - b.completionTokens,
    embeddingTokens: a.embeddingTokens - b.embeddingTokens,
    totalTokens: a.totalTokens - b.totalTokens,
    costMicros: a.costMicros - b.costMicros,
    requestCount: a.requestCount - b.requestCount,
  };
}
