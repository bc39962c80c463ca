import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { UsageAnalyticsService } from '../src/analytics/usage-analytics.service';
import { UsageEventsService } from '../src/analytics/usage-events.service';
import { CSV_COLUMNS } from '../src/analytics/usage-event.mapper';
import { Clock } from '../src/common/clock';
import { createTestApp, TestApp } from './support/test-app';
import { createUsageRecord } from './support/usage-record.factory';

/** Analytics are read against a fixed "now" in the future, so periods (and the TTL monitor) are predictable. */
const NOW = Date.parse('2030-06-15T12:00:00Z');
const at = (iso: string) => new Date(iso);

describe(UsageAnalyticsService.name, () => {
  let testApp: TestApp;
  let logDir: string;
  let aliceKey: string;
  let serviceKey: string;

  beforeAll(async () => {
    logDir = mkdtempSync(join(tmpdir(), 'usage-analytics-'));
    testApp = await createTestApp({ LOG_DIR: logDir, DISPLAY_CURRENCY: 'ZAR', DISPLAY_CURRENCY_RATE: 18.5 });
    const clock = testApp.app.get(Clock);
    clock.advance(NOW - clock.now());

    const events = testApp.app.get(UsageEventsService);
    const record = (userId: string | undefined, overrides: Parameters<typeof createUsageRecord>[0], meta = {}) =>
      events.record(userId, createUsageRecord(overrides), meta);
    await record('alice', { occurredAt: at('2030-06-15T10:00:00Z'), promptTokens: 1000, completionTokens: 200, costMicros: 270, latencyMs: 2000 });
    await record('alice', {
      occurredAt: at('2030-06-15T11:00:00Z'),
      operationType: 'embedding',
      model: 'openai/text-embedding-3-small',
      promptTokens: 0,
      completionTokens: 0,
      embeddingTokens: 30,
      costMicros: 1,
      latencyMs: 100,
    });
    await record('alice', {
      occurredAt: at('2030-06-10T08:00:00Z'),
      model: 'openai/gpt-4o',
      promptTokens: 500,
      completionTokens: 0,
      costMicros: 1250,
      latencyMs: 3000,
      success: false,
      errorMessage: 'primary model openai/gpt-4o timed out',
    });
    await record('alice', { occurredAt: at('2030-05-20T08:00:00Z'), operationType: 'chat_info', promptTokens: 100, completionTokens: 50, costMicros: 45 });
    await record('bob', { occurredAt: at('2030-06-15T09:00:00Z'), promptTokens: 2000, completionTokens: 500, costMicros: 600 }, { tier: 'JIVE' });
    await record(
      'bob',
      { occurredAt: at('2029-12-31T23:00:00Z'), operationType: 'code_generation', model: 'openai/gpt-4o', promptTokens: 300, completionTokens: 700, costMicros: 7750 },
      { tier: 'JIVE' },
    );
    await record(undefined, { occurredAt: at('2030-06-15T07:00:00Z'), operationType: 'embedding', model: 'openai/text-embedding-3-small', promptTokens: 0, completionTokens: 0, embeddingTokens: 10, costMicros: 0 });

    const created = async (body: object) => (await testApp.api().post('/admin/api-keys').send(body).expect(201)).body.key as string;
    aliceKey = await created({ role: 'user', userId: 'alice', name: 'alice app' });
    serviceKey = await created({ role: 'service', name: 'backend' });

    // Tool calls through the real endpoint (seed 002): a user key is bound to its user; a retried POST counts once.
    await testApp.api(aliceKey).post('/api/usage').send({ toolName: 'generate_image', success: true, executionTimeMs: 800 }).expect(201);
    const failed = { toolName: 'generate_image', success: false, executionTimeMs: 1200, recordId: 'tool-call-retried' };
    await testApp.api(aliceKey).post('/api/usage').send(failed).expect(201);
    await testApp.api(aliceKey).post('/api/usage').send(failed).expect(201);
    const bobTool = await testApp.api(serviceKey).post('/api/usage').send({ toolName: 'search_web', tier: 'jive', success: true, executionTimeMs: 300, userId: 'bob' }).expect(201);
    expect(bobTool.body).toMatchObject({ status: 'ok', toolName: 'search_web', tier: 'JIVE' });
    await testApp.app.get(UsageEventsService).settled();
  });

  afterAll(async () => {
    await testApp.close();
    rmSync(logDir, { recursive: true, force: true });
  });

  describe('seed 004: /api/v1/search/token-usage', () => {
    it("answers a user's totals, by operation, by model and by day", async () => {
      const { body } = await testApp.api().get('/api/v1/search/token-usage').query({ user: 'alice', days: 7 }).expect(200);
      expect(body).toMatchObject({ user_id: 'alice', days: 7, from: '2030-06-09', to: '2030-06-15', timezone: 'UTC', filters: { operation: null, model: null } });
      expect(body.totals).toEqual({
        operations: 5,
        successful_operations: 3,
        failed_operations: 2,
        prompt_tokens: 1500,
        completion_tokens: 200,
        embedding_tokens: 30,
        total_tokens: 1730,
        cost_estimate: 0.001521,
        cost_micros: 1521,
        avg_response_time: 1.42,
        cache_hits: 0,
      });
      expect(Object.keys(body.by_operation)).toEqual(['rag_answer', 'embedding', 'tool_call']);
      expect(body.by_operation.rag_answer).toMatchObject({ operations: 2, total_tokens: 1700, failed_operations: 1 });
      expect(body.by_operation.tool_call).toMatchObject({ operations: 2, total_tokens: 0, failed_operations: 1 });
      expect(body.by_model).toMatchObject({
        'openai/gpt-4o-mini': { operations: 1, total_tokens: 1200 },
        'openai/gpt-4o': { operations: 1, total_tokens: 500 },
        'openai/text-embedding-3-small': { operations: 1, embedding_tokens: 30 },
        none: { operations: 2 },
      });
      expect(body.by_day.map((day: { date: string }) => day.date)).toEqual(['2030-06-09', '2030-06-10', '2030-06-11', '2030-06-12', '2030-06-13', '2030-06-14', '2030-06-15']);
      expect(body.by_day[1]).toMatchObject({ date: '2030-06-10', operations: 1, total_tokens: 500 });
      expect(body.by_day[6]).toMatchObject({ date: '2030-06-15', operations: 4, total_tokens: 1230 });
    });

    it('filters by operation and model, and widens with days', async () => {
      const rag = await testApp.api().get('/api/v1/search/token-usage').query({ user: 'alice', operation: 'rag_answer' }).expect(200);
      expect(rag.body.totals).toMatchObject({ operations: 2, total_tokens: 1700, cost_micros: 1520 });
      expect(Object.keys(rag.body.by_operation)).toEqual(['rag_answer']);
      const model = await testApp.api().get('/api/v1/search/token-usage').query({ user: 'alice', model: 'openai/gpt-4o', operation: 'rag_answer' }).expect(200);
      expect(model.body.totals).toMatchObject({ operations: 1, total_tokens: 500, failed_operations: 1 });
      expect(model.body.filters).toEqual({ operation: 'rag_answer', model: 'openai/gpt-4o' });
      const month = await testApp.api().get('/api/v1/search/token-usage').query({ user: 'alice', days: 30 }).expect(200);
      expect(month.body.totals).toMatchObject({ operations: 6, total_tokens: 1880 });
      expect(month.body.by_day).toHaveLength(30);
    });

    it("binds a user key to its own usage and refuses another user's", async () => {
      const own = await testApp.api(aliceKey).get('/api/v1/search/token-usage').expect(200);
      expect(own.body).toMatchObject({ user_id: 'alice', totals: { operations: 5 } });
      await testApp.api(aliceKey).get('/api/v1/search/token-usage').query({ user: 'bob' }).expect(403);
      const forBob = await testApp.api(serviceKey).get('/api/v1/search/token-usage').query({ user: 'bob' }).expect(200);
      expect(forBob.body.totals).toMatchObject({ operations: 2, total_tokens: 2500 });
    });

    it('needs a user from admin and service keys, and rejects bad filters naming the field', async () => {
      const missing = await testApp.api().get('/api/v1/search/token-usage').expect(400);
      expect(missing.body.message).toContain('user is required');
      const bad = await testApp.api().get('/api/v1/search/token-usage').query({ user: 'alice', days: 0, operation: 'searching' }).expect(400);
      expect(bad.body.message).toMatch(/days must not be less than 1/);
      expect(bad.body.message).toMatch(/operation must be one of/);
    });

    it('lists recent events newest first, filtered', async () => {
      const { body } = await testApp.api(aliceKey).get('/api/v1/search/token-usage/recent').query({ limit: 3 }).expect(200);
      expect(body.user_id).toBe('alice');
      expect(body.count).toBe(3);
      expect(body.operations.map((event: { operation_type: string }) => event.operation_type)).toEqual(['tool_call', 'tool_call', 'embedding']);
      expect(body.operations[2]).toMatchObject({ model_name: 'openai/text-embedding-3-small', total_tokens: 30, cost_estimate: 0.000001, response_time: 0.1, success: true, error_message: null });
      const failed = await testApp.api().get('/api/v1/search/token-usage/recent').query({ user: 'alice', operation: 'rag_answer', model: 'openai/gpt-4o' }).expect(200);
      expect(failed.body.operations).toHaveLength(1);
      expect(failed.body.operations[0]).toMatchObject({ success: false, error_message: 'primary model openai/gpt-4o timed out', timestamp: '2030-06-10T08:00:00.000Z' });
    });

    it('answers system-wide usage with a per-user breakdown to admins only', async () => {
      const { body } = await testApp.api().get('/api/v1/search/token-usage/all').query({ days: 7 }).expect(200);
      expect(body).toMatchObject({ days: 7, from: '2030-06-09', to: '2030-06-15', unique_users: 2, filters: { user: null, operation: null, model: null } });
      expect(body.totals).toMatchObject({ operations: 8, total_tokens: 4240, cost_micros: 2121 });
      // Calls made for no user form their own row (user_id null), so the rows add up to the totals.
      expect(body.by_user.map((user: { user_id: string | null }) => user.user_id)).toEqual(['alice', 'bob', null]);
      expect(body.by_user.reduce((sum: number, user: { total_tokens: number }) => sum + user.total_tokens, 0)).toBe(4240);
      expect(body.by_user[1]).toMatchObject({ user_id: 'bob', operations: 2, total_tokens: 2500, cost_micros: 600 });
      const embeddings = await testApp.api().get('/api/v1/search/token-usage/all').query({ operation: 'embedding' }).expect(200);
      expect(embeddings.body).toMatchObject({ unique_users: 1, totals: { operations: 2, embedding_tokens: 40 } });
      const top = await testApp.api().get('/api/v1/search/token-usage/all').query({ limit: 1 }).expect(200);
      expect(top.body.by_user).toHaveLength(1);
      await testApp.api(aliceKey).get('/api/v1/search/token-usage/all').expect(403);
      await testApp.api(serviceKey).get('/api/v1/search/token-usage/all').expect(403);
    });
  });

  describe('seed 002: /api/usage', () => {
    it.each([
      ['today', '2030-06-15', 7, 3740, 871, 2],
      ['week', '2030-06-09', 8, 4240, 2121, 2],
      ['month', '2030-06-01', 8, 4240, 2121, 2],
      ['year', '2030-01-01', 9, 4390, 2166, 2],
      ['all', null, 10, 5390, 9916, 2],
    ])('summarises period=%s', async (period, from, requests, tokens, micros, users) => {
      const { body } = await testApp.api().get('/api/usage').query({ period }).expect(200);
      expect(body).toMatchObject({ period, from, to: '2030-06-15', timezone: 'UTC', currency: 'ZAR', currencyRate: 18.5 });
      expect(body.summary).toMatchObject({ totalTokens: tokens, requestCount: requests, activeUsers: users, costUsd: micros / 1e6 });
      expect(body.summary.cost).toBeCloseTo((micros / 1e6) * 18.5, 5);
      expect(body.dailyTrend).toHaveLength(30);
      expect(body.dailyTrend[29]).toMatchObject({ date: '2030-06-15', totalTokens: 3740, requestCount: 7 });
    });

    it('breaks a period down by tier, tool, provider, model and operation, with top users', async () => {
      const { body } = await testApp.api().get('/api/usage').query({ period: 'today' }).expect(200);
      expect(body.summary).toMatchObject({ inputTokens: 3040, outputTokens: 700, successRate: 0.8571, formatted: { totalTokens: '3.7K', cost: 'R0.0161' } });
      expect(body.byTier).toEqual([
        { tier: 'JIVE', inputTokens: 2000, outputTokens: 500, totalTokens: 2500, requestCount: 2, costUsd: 0.0006, cost: 0.0111 },
        { tier: 'FREE', inputTokens: 1030, outputTokens: 200, totalTokens: 1230, requestCount: 4, costUsd: 0.000271, cost: 0.005014 },
        { tier: 'NONE', inputTokens: 10, outputTokens: 0, totalTokens: 10, requestCount: 1, costUsd: 0, cost: 0 },
      ]);
      expect(body.toolUsage).toEqual([
        {
          toolName: 'generate_image',
          callCount: 2,
          successCount: 1,
          failureCount: 1,
          successRate: 0.5,
          totalExecutionTimeMs: 2000,
          avgExecutionTimeMs: 1000,
          byTier: [{ tier: 'FREE', callCount: 2, successCount: 1, failureCount: 1, totalExecutionTimeMs: 2000, avgExecutionTimeMs: 1000 }],
        },
        expect.objectContaining({ toolName: 'search_web', callCount: 1, successRate: 1, avgExecutionTimeMs: 300 }),
      ]);
      expect(body.mostUsedTools.map((tool: { toolName: string }) => tool.toolName)).toEqual(['generate_image', 'search_web']);
      expect(body.providers).toEqual([
        expect.objectContaining({ provider: 'openrouter', requestCount: 4, totalTokens: 3740, failureCount: 0 }),
        expect.objectContaining({ provider: 'tool', requestCount: 3, totalTokens: 0, failureCount: 1 }),
      ]);
      expect(body.models[0]).toMatchObject({ model: 'openai/gpt-4o-mini', totalTokens: 3700, requestCount: 2 });
      expect(body.operations.map((row: { operation: string }) => row.operation)).toEqual(['rag_answer', 'embedding', 'tool_call']);
      expect(body.topUsers).toEqual([
        { userId: 'bob', totalTokens: 2500, requestCount: 2, costUsd: 0.0006, cost: 0.0111 },
        { userId: 'alice', totalTokens: 1230, requestCount: 4, costUsd: 0.000271, cost: 0.005014 },
      ]);
      const month = await testApp.api().get('/api/usage').query({ period: 'month' }).expect(200);
      expect(month.body.topUsers.map((user: { userId: string }) => user.userId)).toEqual(['alice', 'bob']);
      const all = await testApp.api().get('/api/usage').query({ period: 'all' }).expect(200);
      expect(all.body.topUsers.map((user: { userId: string; costUsd: number }) => [user.userId, user.costUsd])).toEqual([
        ['bob', 0.00835],
        ['alice', 0.001566],
      ]);
    });

    it('serves the today, history, all-time, monthly and tool views', async () => {
      const today = await testApp.api().get('/api/usage/today').expect(200);
      expect(today.body).toMatchObject({ period: 'today', from: '2030-06-15', totalTokens: 3740, requestCount: 7, activeUsers: 2, currency: 'ZAR' });
      expect(today.body.byTier.map((tier: { tier: string }) => tier.tier)).toEqual(['JIVE', 'FREE', 'NONE']);
      const history = await testApp.api().get('/api/usage/history').query({ days: 7 }).expect(200);
      expect(history.body).toMatchObject({ days: 7, from: '2030-06-09', to: '2030-06-15' });
      expect(history.body.history.map((day: { totalTokens: number }) => day.totalTokens)).toEqual([0, 500, 0, 0, 0, 0, 3740]);
      expect(history.body.history[1].byTier).toEqual([expect.objectContaining({ tier: 'FREE', totalTokens: 500 })]);
      const allTime = await testApp.api().get('/api/usage/all-time').expect(200);
      expect(allTime.body).toMatchObject({ period: 'all', from: null, totalTokens: 5390, requestCount: 10, activeUsers: 2 });
      const monthly = await testApp.api().get('/api/usage/monthly').expect(200);
      expect(monthly.body).toMatchObject({ period: 'month', from: '2030-06-01', totalTokens: 4240 });
      const mostUsed = await testApp.api().get('/api/usage/tools/most-used').query({ limit: 1 }).expect(200);
      expect(mostUsed.body).toMatchObject({ period: 'all', totalCalls: 3, tools: [expect.objectContaining({ toolName: 'generate_image', callCount: 2 })] });
      expect(mostUsed.body.tools).toHaveLength(1);
      const tools = await testApp.api().get('/api/usage/tools/monthly').expect(200);
      expect(tools.body).toMatchObject({ period: 'month', from: '2030-06-01', totalCalls: 3, successRate: 0.6667 });
      expect(tools.body.tools).toHaveLength(2);
    });

    it('refuses the admin views to user and service keys, and a bad period', async () => {
      for (const path of ['/api/usage', '/api/usage/today', '/api/usage/history', '/api/usage/all-time', '/api/usage/monthly', '/api/usage/tools/most-used', '/api/usage/tools/monthly']) {
        await testApp.api(aliceKey).get(path).expect(403);
        await testApp.api(serviceKey).get(path).expect(403);
      }
      const bad = await testApp.api().get('/api/usage').query({ period: 'decade' }).expect(400);
      expect(bad.body.message).toContain('period must be one of today, week, month, year, all');
    });

    it("refuses a tool call for another user's id from a user key, and bad bodies", async () => {
      await testApp.api(aliceKey).post('/api/usage').send({ toolName: 'x', success: true, executionTimeMs: 1, userId: 'bob' }).expect(403);
      const bad = await testApp.api().post('/api/usage').send({ toolName: 'bad name', success: 'yes', executionTimeMs: -1 }).expect(400);
      expect(bad.body.fields.map((field: { field: string }) => field.field).sort()).toEqual(['executionTimeMs', 'success', 'toolName']);
    });
  });

  describe('events export: /api/v1/usage-events', () => {
    it('pages through filtered events newest first', async () => {
      const seen: string[] = [];
      let cursor: string | null = null;
      do {
        const page: { body: { events: { record_id: string; user_id: string }[]; count: number; next_cursor: string | null } } = await testApp
          .api()
          .get('/api/v1/usage-events')
          .query({ user: 'alice', limit: 4, ...(cursor ? { cursor } : {}) })
          .expect(200);
        expect(page.body.events.every((event) => event.user_id === 'alice')).toBe(true);
        seen.push(...page.body.events.map((event) => event.record_id));
        cursor = page.body.next_cursor;
      } while (cursor);
      expect(seen).toHaveLength(6);
      expect(new Set(seen).size).toBe(6);

      const failures = await testApp.api().get('/api/v1/usage-events').query({ success: 'false', operation: 'rag_answer' }).expect(200);
      expect(failures.body.events).toHaveLength(1);
      const window = await testApp.api().get('/api/v1/usage-events').query({ from: '2029-12-01T00:00:00Z', to: '2030-06-01T00:00:00Z' }).expect(200);
      expect(window.body.events.map((event: { timestamp: string }) => event.timestamp)).toEqual(['2030-05-20T08:00:00.000Z', '2029-12-31T23:00:00.000Z']);
      const jive = await testApp.api().get('/api/v1/usage-events').query({ tier: 'JIVE', provider: 'openrouter' }).expect(200);
      expect(jive.body.count).toBe(2);
      await testApp.api().get('/api/v1/usage-events').query({ cursor: 'not-a-cursor' }).expect(400);
      await testApp.api().get('/api/v1/usage-events').query({ from: 'yesterday' }).expect(400);
    });

    it('exports CSV for billing with Accept: text/csv', async () => {
      const response = await testApp.api().get('/api/v1/usage-events').set('accept', 'text/csv').query({ user: 'bob' }).expect(200);
      expect(response.headers['content-type']).toMatch(/^text\/csv/);
      const lines = response.text.trim().split('\r\n');
      expect(lines[0]).toBe(CSV_COLUMNS.join(','));
      expect(lines).toHaveLength(4);
      expect(lines.slice(1).every((line) => line.split(',')[2] === 'bob')).toBe(true);
      const paged = await testApp.api().get('/api/v1/usage-events').set('accept', 'text/csv').query({ user: 'bob', limit: 1 }).expect(200);
      expect(paged.headers['x-next-cursor']).toEqual(expect.any(String));
    });

    it('binds a user key to its own events', async () => {
      const own = await testApp.api(aliceKey).get('/api/v1/usage-events').expect(200);
      expect(own.body.count).toBe(6);
      await testApp.api(aliceKey).get('/api/v1/usage-events').query({ user: 'bob' }).expect(403);
      const all = await testApp.api().get('/api/v1/usage-events').query({ limit: 100 }).expect(200);
      expect(all.body.count).toBe(10);
    });
  });
});
