import type { UsageEvent } from './usage-event.schema';

/** A usage event as the API, the JSONL log and the CSV export show it: seed 004's log fields first. */
export interface UsageEventView {
  timestamp: string;
  user_id: string | null;
  operation_type: string;
  query?: string;
  model_name: string;
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
  cost_estimate: number;
  response_time: number;
  success: boolean;
  error_message: string | null;
  record_id: string;
  provider: string;
  tier: string;
  embedding_tokens: number;
  cost_micros: number;
  costSource: string;
  priceVersion?: string;
  priceEntry?: string;
  cachedTokens?: number;
  cacheWriteTokens?: number;
  reasoningTokens?: number;
  /** Set once re-pricing changed the cost: the cost before and when. */
  previousCostMicros?: number;
  repricedAt?: string;
  estimated: boolean;
  cacheHit: boolean;
  requestId: string | null;
  tool_name?: string;
}

export function toUsageEventView(event: UsageEvent): UsageEventView {
  return {
    timestamp: event.timestamp.toISOString(),
    user_id: event.user_id ?? null,
    operation_type: event.operation_type,
    ...(event.query !== undefined ? { query: event.query } : {}),
    model_name: event.model_name,
    prompt_tokens: event.prompt_tokens,
    completion_tokens: event.completion_tokens,
    total_tokens: event.total_tokens,
    cost_estimate: event.cost_estimate,
    response_time: event.response_time,
    success: event.success,
    error_message: event.error_message ?? null,
    record_id: event._id,
    provider: event.provider,
    tier: event.tier,
    embedding_tokens: event.embedding_tokens,
    cost_micros: event.cost_micros,
    costSource: event.costSource,
    ...(event.priceVersion !== undefined ? { priceVersion: event.priceVersion } : {}),
    ...(event.priceEntry !== undefined ? { priceEntry: event.priceEntry } : {}),
    ...(event.cachedTokens !== undefined ? { cachedTokens: event.cachedTokens } : {}),
    ...(event.cacheWriteTokens !== undefined ? { cacheWriteTokens: event.cacheWriteTokens } : {}),
    ...(event.reasoningTokens !== undefined ? { reasoningTokens: event.reasoningTokens } : {}),
    ...(event.previousCostMicros !== undefined ? { previousCostMicros: event.previousCostMicros } : {}),
    ...(event.repricedAt !== undefined ? { repricedAt: new Date(event.repricedAt).toISOString() } : {}),
    estimated: event.estimated,
    cacheHit: event.cacheHit,
    requestId: event.requestId ?? null,
    ...(event.tool_name !== undefined ? { tool_name: event.tool_name } : {}),
  };
}

/** Columns of the CSV billing export (the query is left out: it is not billing data). */
export const CSV_COLUMNS = [
  'record_id',
  'timestamp',
  'user_id',
  'operation_type',
  'model_name',
  'provider',
  'tier',
  'prompt_tokens',
  'completion_tokens',
  'embedding_tokens',
  'total_tokens',
  'cost_micros',
  'cost_estimate',
  'costSource',
  'priceVersion',
  'priceEntry',
  'previousCostMicros',
  'repricedAt',
  'estimated',
  'cacheHit',
  'response_time',
  'success',
  'error_message',
  'requestId',
  'tool_name',
] as const satisfies readonly (keyof UsageEventView)[];

/**
 * RFC 4180 quoting, and a leading apostrophe for text a spreadsheet would run as a
 * formula (=, +, -, @, tab, CR): user ids and error messages come from outside.
 */
export function csvCell(value: unknown): string {
  if (value === null || value === undefined) return '';
  let text = String(value);
  if (typeof value === 'string' && /^[=+\-@\t\r]/.test(text)) text = `'${text}`;
  return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

export function toCsv(events: UsageEventView[], header = true): string {
  const lines = events.map((event) => CSV_COLUMNS.map((column) => csvCell(event[column])).join(','));
  if (header) lines.unshift(CSV_COLUMNS.join(','));
  return lines.map((line) => `${line}\r\n`).join('');
}
