import type { Document } from 'mongodb';
import { UsageCalendar } from './usage-calendar';
import { LedgerTotals, totalsOf, UsageRecord } from './usage-record';
import type { RecentSession } from './user-token-usage.schema';

/** Enough applied ids that a replay after any realistic outage still finds its id. */
export const APPLIED_RECORD_IDS_KEPT = 1000;

export type LedgerRecord = UsageRecord & { recordId: string; occurredAt: Date };

/** The ledger fields a write reads back: the totals, and the oldest day for pruning. */
export const TOTALS_PROJECTION = {
  _id: 0,
  totalPromptTokens: 1,
  totalCompletionTokens: 1,
  totalEmbeddingTokens: 1,
  totalTokens: 1,
  totalCostMicros: 1,
  requestCount: 1,
  oldestDay: 1,
} as const;

export interface TotalsDocument {
  totalPromptTokens?: number;
  totalCompletionTokens?: number;
  totalEmbeddingTokens?: number;
  totalTokens?: number;
  totalCostMicros?: number;
  requestCount?: number;
  oldestDay?: string;
}

export function toLedgerTotals(document: TotalsDocument): LedgerTotals {
  return {
    promptTokens: document.totalPromptTokens ?? 0,
    completionTokens: document.totalCompletionTokens ?? 0,
    embeddingTokens: document.totalEmbeddingTokens ?? 0,
    totalTokens: document.totalTokens ?? 0,
    costMicros: document.totalCostMicros ?? 0,
    requestCount: document.requestCount ?? 0,
  };
}

/**
 * One atomic upsert applying a user's records in order: the totals and day/month buckets
 * move by their sums, and each record leaves its session and its id, in order, so the
 * totals after any one of them can be told from the document afterwards.
 */
export function ledgerUpdate(records: LedgerRecord[], calendar: UsageCalendar, recentSessionsLimit: number): Document {
  const inc: Record<string, number> = {};
  const add = (path: string, value: number) => {
    inc[path] = (inc[path] ?? 0) + value;
  };
  let firstAt = records[0].occurredAt;
  let lastAt = records[0].occurredAt;
  let oldestDay: string | undefined;
  const sessions: RecentSession[] = [];
  for (const record of records) {
    const totals = totalsOf(record);
    const day = calendar.dayKey(record.occurredAt);
    add('totalPromptTokens', totals.promptTokens);
    add('totalCompletionTokens', totals.completionTokens);
    add('totalEmbeddingTokens', totals.embeddingTokens);
    add('totalTokens', totals.totalTokens);
    add('totalCostMicros', totals.costMicros);
    add('requestCount', 1);
    for (const prefix of [`dailyUsage.${day}`, `monthlyUsage.${day.slice(0, 7)}`]) {
      add(`${prefix}.promptTokens`, totals.promptTokens);
      add(`${prefix}.completionTokens`, totals.completionTokens);
      add(`${prefix}.embeddingTokens`, totals.embeddingTokens);
      add(`${prefix}.totalTokens`, totals.totalTokens);
      add(`${prefix}.costMicros`, totals.costMicros);
      add(`${prefix}.requestCount`, 1);
      add(`${prefix}.operations.${record.operationType}`, 1);
    }
    if (record.occurredAt < firstAt) firstAt = record.occurredAt;
    if (record.occurredAt > lastAt) lastAt = record.occurredAt;
    if (oldestDay === undefined || day < oldestDay) oldestDay = day;
    sessions.push(sessionOf(record, totals));
  }
  return {
    $inc: inc,
    // $min/$max rather than $setOnInsert/$set: replayed records may arrive out of order.
    $min: { firstRequestAt: firstAt, oldestDay },
    $max: { lastRequestAt: lastAt },
    $push: {
      recentSessions: { $each: sessions, $slice: -recentSessionsLimit },
      appliedRecordIds: { $each: records.map((record) => record.recordId), $slice: -APPLIED_RECORD_IDS_KEPT },
    },
  };
}

function sessionOf(record: LedgerRecord, totals: LedgerTotals): RecentSession {
  return {
    recordId: record.recordId,
    operationType: record.operationType,
    model: record.model,
    provider: record.provider,
    promptTokens: totals.promptTokens,
    completionTokens: totals.completionTokens,
    embeddingTokens: totals.embeddingTokens,
    totalTokens: totals.totalTokens,
    costMicros: totals.costMicros,
    costSource: record.costSource,
    ...(record.priceVersion ? { priceVersion: record.priceVersion } : {}),
    ...(record.priceEntry ? { priceEntry: record.priceEntry } : {}),
    estimated: record.estimated ?? false,
    latencyMs: record.latencyMs,
    success: record.success,
    ...(record.errorMessage ? { errorMessage: record.errorMessage } : {}),
    ...(record.requestId ? { requestId: record.requestId } : {}),
    timestamp: record.occurredAt,
  };
}
