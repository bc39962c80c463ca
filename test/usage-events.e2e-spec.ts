import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { UsageEventsService } from '../src/analytics/usage-events.service';
import { usageLogFileName, UsageLogWriter } from '../src/analytics/usage-log.writer';
import { Clock } from '../src/common/clock';
import { OPERATION_TYPES } from '../src/token-tracking/usage-record';
import { createTestApp, TestApp } from './support/test-app';
import { createUsageRecord } from './support/usage-record.factory';

const NOW = Date.parse('2030-06-15T12:00:00Z');
const TODAY = '2030-06-15';
const SEED_004_FIELDS = [
  'timestamp', 'user_id', 'operation_type', 'query', 'model_name', 'prompt_tokens', 'completion_tokens',
  'total_tokens', 'cost_estimate', 'response_time', 'success', 'error_message',
];

describe(UsageEventsService.name, () => {
  let testApp: TestApp;
  let events: UsageEventsService;
  let logDir: string;

  // Aggregates are written just after record() resolves: wait for them before reading.
  const rollup = async (id: string) => (await events.flushed(), testApp.db.collection('usage_rollups').findOne({ _id: id as never }));
  const userRollup = async (id: string) => (await events.flushed(), testApp.db.collection('usage_user_rollups').findOne({ _id: id as never }));

  beforeAll(async () => {
    logDir = mkdtempSync(join(tmpdir(), 'usage-events-'));
    testApp = await createTestApp({ LOG_DIR: logDir, USAGE_LOG_RETENTION_DAYS: 30 });
    const clock = testApp.app.get(Clock);
    clock.advance(NOW - clock.now());
    events = testApp.app.get(UsageEventsService);
  });

  afterAll(async () => {
    await testApp.close();
    rmSync(logDir, { recursive: true, force: true });
  });

  it('stores one event per operation type with the seed 004 fields, counted in the day and month aggregates', async () => {
    for (const [index, operationType] of OPERATION_TYPES.entries()) {
      await events.record(
        'ops-user',
        createUsageRecord({
          recordId: `op-${operationType}`,
          operationType,
          occurredAt: new Date(NOW - 60_000 + index),
          promptTokens: 10 * (index + 1),
          completionTokens: 5,
          embeddingTokens: operationType.includes('embedding') ? 7 : 0,
          costMicros: 100 + index,
          latencyMs: 250,
          requestId: `req-${index}`,
        }),
        { query: `question ${index}`, cacheHit: operationType === 'embedding' },
      );
    }
    // The aggregates (and the clearing of each event's pending markers) follow the inserts.
    await events.flushed();
    expect(await testApp.db.collection('usage_events').countDocuments({ user_id: 'ops-user' })).toBe(OPERATION_TYPES.length);

    const stored = await testApp.db.collection('usage_events').findOne({ _id: 'op-embedding' as never });
    expect(stored).toEqual({
      _id: 'op-embedding',
      timestamp: new Date(NOW - 60_000 + OPERATION_TYPES.indexOf('embedding')),
      user_id: 'ops-user',
      operation_type: 'embedding',
      query: `question ${OPERATION_TYPES.indexOf('embedding')}`,
      model_name: 'openai/gpt-4o-mini',
      prompt_tokens: 70,
      completion_tokens: 5,
      embedding_tokens: 7,
      total_tokens: 82,
      cost_micros: 106,
      cost_estimate: 0.000106,
      response_time: 0.25,
      success: true,
      error_message: null,
      provider: 'openrouter',
      tier: 'FREE',
      costSource: 'catalog',
      estimated: false,
      cacheHit: true,
      requestId: 'req-6',
    });

    const day = await rollup(`day:${TODAY}`);
    expect(day?.totals).toMatchObject({ requests: OPERATION_TYPES.length, cacheHits: 1 });
    expect(Object.keys(day?.cells ?? {}).sort()).toEqual([...OPERATION_TYPES].sort());
    expect(day?.cells.rag_answer['openai/gpt-4o-mini']).toMatchObject({ requests: 1, latencyMs: 250 });
    expect((await rollup('month:2030-06'))?.totals.requests).toBe(OPERATION_TYPES.length);
    expect((await userRollup(`day:${TODAY}:ops-user`))?.totals).toMatchObject({ requests: OPERATION_TYPES.length });
    expect(await userRollup('month:2030-06:ops-user')).toMatchObject({ granularity: 'month', period: '2030-06', userId: 'ops-user' });
  });

  it('ignores a replay of an event already written, aggregates included', async () => {
    const record = createUsageRecord({ recordId: 'replayed-record', occurredAt: new Date(NOW), promptTokens: 40, completionTokens: 2, costMicros: 9 });
    await events.record('replay-user', record, {});
    const snapshot = async () => ({
      day: (await rollup(`day:${TODAY}`))?.totals,
      month: (await rollup('month:2030-06'))?.totals,
      userDay: (await userRollup(`day:${TODAY}:replay-user`))?.totals,
      userMonth: (await userRollup('month:2030-06:replay-user'))?.totals,
      events: await testApp.db.collection('usage_events').countDocuments(),
    });
    const before = await snapshot();
    await events.record('replay-user', record, {});
    await events.record('replay-user', { ...record, promptTokens: 999 }, {});
    expect(await snapshot()).toEqual(before);
    expect(before.userDay).toMatchObject({ requests: 1, totalTokens: 42, costMicros: 9 });
  });

  it('stores an event whose aggregate write fails, and completes that aggregate on replay, counting each once', async () => {
    // A user month aggregate MongoDB cannot $inc into (PathNotViable, 28): that update fails, the others apply.
    await testApp.db.collection('usage_user_rollups').insertOne({ _id: 'month:2030-06:flaky-user' as never, totals: 'corrupt' });
    const record = createUsageRecord({ recordId: 'partly-failed', occurredAt: new Date(NOW), promptTokens: 11, completionTokens: 0, costMicros: 3 });
    // Stored, so the caller is answered; the aggregate that failed is released for a replay or the sweep.
    await events.record('flaky-user', record, {});
    await events.flushed();
    const pending = await testApp.db.collection('usage_events').findOne({ _id: 'partly-failed' as never });
    expect(pending).toMatchObject({ rollupsPending: ['userMonth'], rollupsLeaseUntil: new Date(0) });
    await testApp.db.collection('usage_user_rollups').deleteOne({ _id: 'month:2030-06:flaky-user' as never });

    const dayBefore = (await rollup(`day:${TODAY}`))?.totals.requests;
    await events.record('flaky-user', record, {});
    await events.record('flaky-user', record, {});
    expect((await rollup(`day:${TODAY}`))?.totals.requests).toBe(dayBefore);
    expect((await userRollup(`day:${TODAY}:flaky-user`))?.totals).toMatchObject({ requests: 1, totalTokens: 11 });
    expect((await userRollup('month:2030-06:flaky-user'))?.totals).toMatchObject({ requests: 1, totalTokens: 11 });
    const done = await testApp.db.collection('usage_events').findOne({ _id: 'partly-failed' as never });
    expect(done).not.toHaveProperty('rollupsPending');
    expect(done).not.toHaveProperty('rollupsLeaseUntil');
  });

  it('truncates the stored query to 500 characters and keeps calls made for no user', async () => {
    await events.record(undefined, createUsageRecord({ recordId: 'long-query', occurredAt: new Date(NOW) }), { query: `${'x'.repeat(499)}😀tail` });
    const stored = await testApp.db.collection('usage_events').findOne({ _id: 'long-query' as never });
    expect([...(stored?.query as string)]).toHaveLength(500);
    expect(stored?.query.endsWith('😀')).toBe(true);
    expect(stored).toMatchObject({ user_id: null, tier: 'NONE' });
    await events.flushed();
    expect(await testApp.db.collection('usage_user_rollups').countDocuments({ userId: null })).toBe(0);
  });

  it('appends each new event to the day\'s JSONL log with the seed 004 field names', async () => {
    await events.settled();
    await testApp.app.get(UsageLogWriter).flush();
    const file = join(logDir, usageLogFileName(TODAY));
    const lines = readFileSync(file, 'utf8').trim().split('\n').map((line) => JSON.parse(line) as Record<string, unknown>);
    const ids = lines.map((line) => line.record_id);
    expect(new Set(ids).size).toBe(ids.length);
    expect(ids).toEqual(expect.arrayContaining(['op-rag_answer', 'replayed-record', 'partly-failed', 'long-query']));
    const line = lines.find((entry) => entry.record_id === 'op-rag_answer')!;
    expect(Object.keys(line).slice(0, SEED_004_FIELDS.length)).toEqual(SEED_004_FIELDS);
    expect(line).toMatchObject({ user_id: 'ops-user', operation_type: 'rag_answer', model_name: 'openai/gpt-4o-mini', success: true, error_message: null, response_time: 0.25 });
  });

  it('deletes log files older than USAGE_LOG_RETENTION_DAYS', async () => {
    for (const name of ['token_usage_2030-05-16.jsonl', 'token_usage_2030-05-17.jsonl', 'token_usage_2029-01-01.jsonl', 'notes.txt']) {
      writeFileSync(join(logDir, name), '{}\n');
    }
    const deleted = await testApp.app.get(UsageLogWriter).cleanup();
    expect(deleted.sort()).toEqual(['token_usage_2029-01-01.jsonl', 'token_usage_2030-05-16.jsonl']);
    expect(readdirSync(logDir).sort()).toEqual(['notes.txt', 'token_usage_2030-05-17.jsonl', usageLogFileName(TODAY)]);
  });

  it('expires raw events with a TTL index of EVENT_RETENTION_DAYS, and user day aggregates by expiresAt', async () => {
    const indexes = await testApp.db.collection('usage_events').indexes();
    expect(indexes).toEqual(expect.arrayContaining([expect.objectContaining({ name: 'timestamp_ttl', key: { timestamp: 1 }, expireAfterSeconds: 90 * 86_400 })]));
    expect(indexes).toEqual(expect.arrayContaining([expect.objectContaining({ key: { user_id: 1, timestamp: -1 } })]));
    const rollupIndexes = await testApp.db.collection('usage_user_rollups').indexes();
    expect(rollupIndexes).toEqual(expect.arrayContaining([expect.objectContaining({ key: { expiresAt: 1 }, expireAfterSeconds: 0 })]));
    const userDay = await userRollup(`day:${TODAY}:ops-user`);
    expect(userDay?.expiresAt.getTime()).toBeGreaterThan(NOW + 399 * 86_400_000);
    expect(await userRollup('month:2030-06:ops-user')).not.toHaveProperty('expiresAt');
  });

  it('records events of real endpoints on the simulated provider', async () => {
    await testApp.api().post('/api/v1/orcha/chat').send({ user_id: 'live-user', message: 'Hello there' }).expect(200);
    await testApp.api().post('/chat/message').send({ username: 'live-user', message: 'Add a /home command' }).expect(200);
    await events.settled();

    const stored = await testApp.db.collection('usage_events').find({ user_id: 'live-user' }).sort({ timestamp: 1 }).toArray();
    expect(stored.map((event) => event.operation_type)).toEqual(['orcha_chat', 'chat_intent', 'chat_modification']);
    expect(stored.every((event) => event.provider === 'simulated' && event.total_tokens > 0 && event.success)).toBe(true);

    const usage = await testApp.api().get('/api/v1/search/token-usage').query({ user: 'live-user', days: 1 }).expect(200);
    const ledger = await testApp.db.collection('user_token_usage').findOne({ userId: 'live-user' });
    expect(usage.body.totals).toMatchObject({ operations: 3, total_tokens: ledger?.totalTokens, cost_micros: ledger?.totalCostMicros });
    expect(Object.keys(usage.body.by_operation).sort()).toEqual(['chat_intent', 'chat_modification', 'orcha_chat']);
  });

  describe('with LOG_QUERIES=false', () => {
    let quiet: TestApp;
    const quietLogs = mkdtempSync(join(tmpdir(), 'usage-events-quiet-'));

    beforeAll(async () => {
      quiet = await createTestApp({ LOG_DIR: quietLogs, LOG_QUERIES: false, EVENT_RETENTION_DAYS: 7 });
    });

    afterAll(async () => {
      await quiet.close();
      rmSync(quietLogs, { recursive: true, force: true });
    });

    it('omits the query from the event and the log, and follows EVENT_RETENTION_DAYS', async () => {
      await quiet.app.get(UsageEventsService).record('quiet-user', createUsageRecord({ recordId: 'quiet' }), { query: 'secret question' });
      const stored = await quiet.db.collection('usage_events').findOne({ _id: 'quiet' as never });
      expect(stored).not.toHaveProperty('query');
      await quiet.app.get(UsageEventsService).settled();
      await quiet.app.get(UsageLogWriter).flush();
      const [file] = readdirSync(quietLogs);
      expect(readFileSync(join(quietLogs, file), 'utf8')).not.toContain('secret question');
      const ttl = (await quiet.db.collection('usage_events').indexes()).find((index) => index.name === 'timestamp_ttl');
      expect(ttl?.expireAfterSeconds).toBe(7 * 86_400);
    });
  });
});
