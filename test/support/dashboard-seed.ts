import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { UsageEventsService } from '../../src/analytics/usage-events.service';
import { Clock } from '../../src/common/clock';
import { TokenTrackingService } from '../../src/token-tracking/token-tracking.service';
import type { OperationType } from '../../src/token-tracking/usage-record';
import { createTestApp, TestApp } from './test-app';
import { createUsageRecord } from './usage-record.factory';

/** The dashboards are read against a fixed "now", so every period holds known events. */
export const DASHBOARD_NOW = Date.parse('2030-06-15T12:00:00Z');
export const DISPLAY_CURRENCY = 'ZAR';
export const DISPLAY_CURRENCY_RATE = 18.5;

export interface SeedEvent {
  user: string;
  at: string;
  tier: string;
  operation: OperationType;
  model: string;
  provider: string;
  prompt: number;
  completion: number;
  embedding?: number;
  costMicros: number;
  latencyMs: number;
  success?: boolean;
}

/**
 * Written to the ledger (TokenTrackingService.trackTokenUsage) and to the analytics
 * (UsageEventsService.record) as one record each, as a tracked call does, minus the rolling
 * window: these are past calls, and only today's gateway call counts in the window.
 */
export const SEED_EVENTS: SeedEvent[] = [
  { user: 'alice', at: '2030-06-15T09:00:00Z', tier: 'FREE', operation: 'rag_answer', model: 'openai/gpt-4o-mini', provider: 'openrouter', prompt: 1000, completion: 200, costMicros: 270, latencyMs: 2000 },
  { user: 'alice', at: '2030-06-15T10:00:00Z', tier: 'FREE', operation: 'embedding', model: 'openai/text-embedding-3-small', provider: 'openrouter', prompt: 0, completion: 0, embedding: 30, costMicros: 1, latencyMs: 100 },
  { user: 'bob', at: '2030-06-15T08:00:00Z', tier: 'JIVE', operation: 'chat_info', model: 'openai/gpt-4o', provider: 'openrouter', prompt: 2000, completion: 500, costMicros: 600, latencyMs: 1500 },
  { user: 'alice', at: '2030-06-14T12:00:00Z', tier: 'FREE', operation: 'chat_intent', model: 'openai/gpt-4o-mini', provider: 'openrouter', prompt: 800, completion: 100, costMicros: 180, latencyMs: 900 },
  { user: 'alice', at: '2030-06-13T12:00:00Z', tier: 'FREE', operation: 'chat_intent', model: 'openai/gpt-4o-mini', provider: 'openrouter', prompt: 1200, completion: 300, costMicros: 360, latencyMs: 1100 },
  { user: 'carol', at: '2030-06-12T12:00:00Z', tier: 'JIGGA', operation: 'rag_answer', model: 'anthropic/claude-3.5-sonnet', provider: 'anthropic', prompt: 4000, completion: 1000, costMicros: 27000, latencyMs: 2500, success: false },
  { user: 'bob', at: '2030-06-10T12:00:00Z', tier: 'JIVE', operation: 'code_generation', model: 'openai/gpt-4o', provider: 'openrouter', prompt: 300, completion: 700, costMicros: 7750, latencyMs: 3000 },
  { user: 'alice', at: '2030-06-06T12:00:00Z', tier: 'FREE', operation: 'rag_answer', model: 'openai/gpt-4o-mini', provider: 'openrouter', prompt: 3000, completion: 600, costMicros: 810, latencyMs: 2200 },
  { user: 'carol', at: '2030-06-03T12:00:00Z', tier: 'JIGGA', operation: 'plugin_generation', model: 'openai/gpt-4o', provider: 'openrouter', prompt: 6000, completion: 3000, costMicros: 45000, latencyMs: 4000 },
  { user: 'dave', at: '2030-05-28T12:00:00Z', tier: 'FREE', operation: 'rag_answer', model: 'openai/gpt-4o-mini', provider: 'openrouter', prompt: 2500, completion: 500, costMicros: 675, latencyMs: 1800 },
  { user: 'dave', at: '2030-03-02T12:00:00Z', tier: 'FREE', operation: 'rag_answer', model: 'openai/gpt-4o-mini', provider: 'openrouter', prompt: 5000, completion: 10000, costMicros: 6750, latencyMs: 5000 },
  { user: 'erin', at: '2029-11-01T12:00:00Z', tier: 'FREE', operation: 'batch_embedding', model: 'openai/text-embedding-3-small', provider: 'openrouter', prompt: 0, completion: 0, embedding: 1_500_000, costMicros: 30000, latencyMs: 9000 },
];

/** Tool calls through POST /api/usage, all today. */
export const SEED_TOOL_CALLS = [
  { user: 'alice', toolName: 'generate_image', success: true, executionTimeMs: 800 },
  { user: 'alice', toolName: 'generate_image', success: false, executionTimeMs: 1200 },
  { user: 'bob', toolName: 'search_web', tier: 'jive', success: true, executionTimeMs: 300 },
];

/** Today's real AI call: alice's key through the OpenAI-compatible gateway and the simulated provider. */
export interface GatewayCall {
  promptTokens: number;
  completionTokens: number;
  totalTokens: number;
  costMicros: number;
}

export interface SeededDashboardApp {
  testApp: TestApp;
  baseUrl: string;
  adminKey: string;
  aliceKey: string;
  serviceKey: string;
  gateway: GatewayCall;
  close(): Promise<void>;
}

type Window = { from: string | null; to: string };

export const PERIOD_WINDOWS: Record<'today' | 'week' | 'month' | 'year' | 'all', Window> = {
  today: { from: '2030-06-15', to: '2030-06-15' },
  week: { from: '2030-06-09', to: '2030-06-15' },
  month: { from: '2030-06-01', to: '2030-06-15' },
  year: { from: '2030-01-01', to: '2030-06-15' },
  all: { from: null, to: '2030-06-15' },
};

export interface ExpectedTotals {
  totalTokens: number;
  requests: number;
  costMicros: number;
  users: Set<string>;
}

/** What the seed adds up to in a window of days (optionally for one user): the tests' independent expectation. */
export function expectedTotals(window: Window, gateway: GatewayCall, user?: string): ExpectedTotals {
  const inWindow = (day: string) => (window.from === null || day >= window.from) && day <= window.to;
  const totals: ExpectedTotals = { totalTokens: 0, requests: 0, costMicros: 0, users: new Set() };
  for (const event of SEED_EVENTS) {
    if (!inWindow(event.at.slice(0, 10)) || (user && event.user !== user)) continue;
    totals.totalTokens += event.prompt + event.completion + (event.embedding ?? 0);
    totals.requests += 1;
    totals.costMicros += event.costMicros;
    totals.users.add(event.user);
  }
  if (inWindow('2030-06-15')) {
    for (const call of SEED_TOOL_CALLS) {
      if (user && call.user !== user) continue;
      totals.requests += 1;
      totals.users.add(call.user);
    }
    if (!user || user === 'alice') {
      totals.totalTokens += gateway.totalTokens;
      totals.costMicros += gateway.costMicros;
      totals.requests += 1;
      totals.users.add('alice');
    }
  }
  return totals;
}

/**
 * The whole app listening on a real port (127.0.0.1), its clock at DASHBOARD_NOW, seeded
 * through the analytics path, the tool endpoint and one real gateway call.
 */
export async function startSeededDashboardApp(): Promise<SeededDashboardApp> {
  const logDir = await mkdtemp(join(tmpdir(), 'dashboard-logs-'));
  const testApp = await createTestApp({
    LOG_DIR: logDir,
    DISPLAY_CURRENCY,
    DISPLAY_CURRENCY_RATE,
    // Browser refreshes and CLI runs make many calls with one key.
    RATE_LIMIT_PER_MINUTE: 0,
  });
  const clock = testApp.app.get(Clock);
  clock.advance(DASHBOARD_NOW - clock.now());

  // Plans through the real admin endpoint: the per-user view shows the tier's limits.
  for (const [user, tier] of [['bob', 'JIVE'], ['carol', 'JIGGA']]) await testApp.api().put(`/user/${user}/tier`).send({ tier }).expect(200);

  const events = testApp.app.get(UsageEventsService);
  const ledger = testApp.app.get(TokenTrackingService);
  // In the order they happened, as a live ledger receives them (recent sessions are newest first).
  for (const event of [...SEED_EVENTS].sort((a, b) => a.at.localeCompare(b.at))) {
    const record = createUsageRecord({
      occurredAt: new Date(event.at),
      operationType: event.operation,
      model: event.model,
      provider: event.provider,
      promptTokens: event.prompt,
      completionTokens: event.completion,
      embeddingTokens: event.embedding ?? 0,
      costMicros: event.costMicros,
      latencyMs: event.latencyMs,
      success: event.success ?? true,
      ...(event.success === false ? { errorMessage: `${event.model} failed` } : {}),
    });
    await ledger.trackTokenUsage(event.user, record);
    // Idempotent by recordId, so this stays right once the ledger records the event itself.
    await events.record(event.user, record, { tier: event.tier });
  }

  const createKey = async (body: object) => (await testApp.api().post('/admin/api-keys').send(body).expect(201)).body.key as string;
  const aliceKey = await createKey({ role: 'user', userId: 'alice', name: 'dashboard alice' });
  const serviceKey = await createKey({ role: 'service', name: 'dashboard service' });
  for (const { user, ...call } of SEED_TOOL_CALLS) {
    await testApp.api(serviceKey).post('/api/usage').send({ ...call, userId: user }).expect(201);
  }
  // The clock runs on: on a busy machine seeding takes seconds, and the window opened by this call
  // is meant to start at DASHBOARD_NOW.
  clock.advance(DASHBOARD_NOW - clock.now());
  const completion = await testApp
    .api(aliceKey)
    .post('/v1/chat/completions')
    .send({ model: 'openai/gpt-4o-mini', messages: [{ role: 'user', content: 'How many tokens did I use this week?' }], max_tokens: 40 })
    .expect(200);
  const usage = completion.body.usage as { prompt_tokens: number; completion_tokens: number; total_tokens: number };
  await events.settled();
  const aliceLedger = (await testApp.api().get('/user/alice/token-usage').expect(200)).body as { recentSessions: { operationType: string; costUsd: number }[] };
  const gatewaySession = aliceLedger.recentSessions.find((session) => session.operationType === 'chat_completion');
  if (!gatewaySession) throw new Error('the gateway call is missing from the ledger');

  await testApp.app.listen(0, '127.0.0.1');
  const baseUrl = (await testApp.app.getUrl()).replace('[::1]', '127.0.0.1');
  return {
    testApp,
    baseUrl,
    adminKey: testApp.adminKey,
    aliceKey,
    serviceKey,
    gateway: {
      promptTokens: usage.prompt_tokens,
      completionTokens: usage.completion_tokens,
      totalTokens: usage.total_tokens,
      costMicros: Math.round(gatewaySession.costUsd * 1e6),
    },
    async close() {
      await testApp.close();
      await rm(logDir, { recursive: true, force: true });
    },
  };
}
