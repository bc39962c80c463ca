import { randomUUID } from 'node:crypto';
import type { TrackedUsageRecord } from '../../src/analytics/usage-events.service';

/** A priced, successful usage record; override what a test is about. */
export function createUsageRecord(overrides: Partial<TrackedUsageRecord> = {}): TrackedUsageRecord {
  return {
    recordId: randomUUID(),
    occurredAt: new Date(),
    operationType: 'rag_answer',
    model: 'openai/gpt-4o-mini',
    provider: 'openrouter',
    promptTokens: 100,
    completionTokens: 20,
    costMicros: 27,
    costSource: 'catalog',
    estimated: false,
    latencyMs: 1200,
    success: true,
    ...overrides,
  };
}
