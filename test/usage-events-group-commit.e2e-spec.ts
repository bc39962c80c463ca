import { getConnectionToken, getModelToken } from '@nestjs/mongoose';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { CommandStartedEvent, Document } from 'mongodb';
import { MongoNetworkError } from 'mongodb';
import type { Connection, Model } from 'mongoose';
import request from 'supertest';
import { TrackedUsageRecord, UsageEventMeta, UsageEventsService } from '../src/analytics/usage-events.service';
import type { RollupMetrics } from '../src/analytics/usage-rollup';
import { UserUsageRollup } from '../src/analytics/usage-rollup.schema';
import { Clock } from '../src/common/clock';
import { createTestApp, TestApp } from './support/test-app';
import { createUsageRecord } from './support/usage-record.factory';

const NOW = Date.parse('2030-12-15T12:00:00Z');

interface Call {
  userId: string | undefined;
  record: TrackedUsageRecord;
  meta: UsageEventMeta;
}

type Metrics = RollupMetrics;

function metricsOf(calls: Call[]): Metrics {
  const sum = (value: (call: Call) => number) => calls.reduce((total, call) => total + value(call), 0);
  const embedding = (call: Call) => call.record.embeddingTokens ?? 0;
  return {
    requests: calls.length,
    failures: sum((call) => (call.record.success ? 0 : 1)),
    promptTokens: sum((call) => call.record.promptTokens),
    completionTokens: sum((call) => call.record.completionTokens),
    embeddingTokens: sum(embedding),
    totalTokens: sum((call) => call.record.promptTokens + call.record.completionTokens + embedding(call)),
    costMicros: sum((call) => call.record.costMicros),
    latencyMs: sum((call) => call.record.latencyMs),
    cacheHits: sum((call) => (call.meta.cacheHit ? 1 : 0)),
  };
}

/** 300 varied calls on 2030-08-01 over 20 users, every 25th for no user. */
const LOAD_DAY = '2030-08-01';
const LOAD: Call[] = Array.from({ length: 300 }, (_, i) => {
  const embedding = i % 3 === 0;
  return {
    userId: i % 25 === 24 ? undefined : `load-user-${i % 20}`,
    record: createUsageRecord({
      recordId: `load-${i}`,
      occurredAt: new Date(Date.parse(`${LOAD_DAY}T10:00:00Z`) + i * 1000),
      operationType: embedding ? 'embedding' : 'rag_answer',
      model: i % 2 === 0 ? 'openai/gpt-4.1' : 'openai/gpt-4o-mini',
      promptTokens: 10 + (i % 17),
      completionTokens: embedding ? 0 : 5 + (i % 7),
      embeddingTokens: embedding ? 20 + (i % 40) : 0,
      costMicros: 3 + (i % 11),
      latencyMs: 100 + i,
      success: i % 10 !== 0,
    }),
    meta: { tier: i % 2 === 0 ? 'JIVE' : 'FREE', cacheHit: i % 4 === 0, ...(i % 30 === 0 ? { tool: { name: 'search.web', executionTimeMs: 100 + i } } : {}) },
  };
});
const LOAD_USERS = Array.from({ length: 20 }, (_, i) => `load-user-${i}`);
const tokensOf = (userId: string) => metricsOf(LOAD.filter((call) => call.userId === userId)).totalTokens;
/** About half the users end the day at or above it. */
const USER_DAILY_TOKENS = [...LOAD_USERS.map(tokensOf)].sort((a, b) => a - b)[10];
const GLOBAL_DAILY_TOKENS = Math.ceil(metricsOf(LOAD).totalTokens / 2);
const HIGH_USAGE_EMBEDDING_TOKENS = 10;
const HIGH_USAGE_MULTIPLIER = 5;

describe(`${UsageEventsService.name} group commit`, () => {
  let testApp: TestApp;
  let events: UsageEventsService;
  let logDir: string;
  const commands: CommandStartedEvent[] = [];

  // Aggregates are written just after record() resolves: wait for them before reading.
  const rollup = async (id: string) => (await events.flushed(), (await testApp.db.collection('usage_rollups').findOne({ _id: id as never })) ?? undefined);
  const userRollup = async (id: string) => (await events.flushed(), (await testApp.db.collection('usage_user_rollups').findOne({ _id: id as never })) ?? undefined);
  const record = (call: Call) => events.record(call.userId, call.record, call.meta);
  const commandsOn = (name: string, collection: string) => commands.filter((event) => event.commandName === name && event.command[name] === collection);

  beforeAll(async () => {
    logDir = mkdtempSync(join(tmpdir(), 'usage-group-commit-'));
    testApp = await createTestApp({
      LOG_DIR: logDir,
      MONGODB_MONITOR_COMMANDS: true,
      BUDGET_ALERTS: JSON.stringify({ global: { dailyTokens: GLOBAL_DAILY_TOKENS }, user: { dailyTokens: USER_DAILY_TOKENS } }),
      HIGH_USAGE_EXPECTED_TOKENS: JSON.stringify({ embedding: HIGH_USAGE_EMBEDDING_TOKENS }),
      HIGH_USAGE_MULTIPLIER,
    });
    const clock = testApp.app.get(Clock);
    clock.advance(NOW - clock.now());
    events = testApp.app.get(UsageEventsService);
    testApp.app
      .get<Connection>(getConnectionToken())
      .getClient()
      .on('commandStarted', (event: CommandStartedEvent) => commands.push(event));
  });

  beforeEach(() => {
    commands.length = 0;
  });

  afterAll(async () => {
    await testApp.close();
    rmSync(logDir, { recursive: true, force: true });
  });

  it('writes 300 concurrent records in a few commands with exact aggregates, markers cleared and alerts on post-write totals', async () => {
    await Promise.all(LOAD.map(record));
    await events.settled();

    const inserts = commandsOn('insert', 'usage_events');
    expect(inserts.length).toBeLessThan(10);
    expect(inserts.reduce((count, event) => count + (event.command.documents as Document[]).length, 0)).toBe(LOAD.length);
    const rollupWrites = [...commandsOn('update', 'usage_rollups'), ...commandsOn('update', 'usage_user_rollups')];
    expect(rollupWrites.length).toBeLessThanOrEqual(2 * inserts.length);
    // One statement per aggregate document per commit, not one per event and aggregate.
    expect(rollupWrites.reduce((count, event) => count + (event.command.updates as Document[]).length, 0)).toBeLessThan(LOAD.length);
    expect(commandsOn('findAndModify', 'usage_rollups')).toHaveLength(0);
    expect(commandsOn('findAndModify', 'usage_user_rollups')).toHaveLength(0);

    expect(await testApp.db.collection('usage_events').countDocuments({ _id: { $in: LOAD.map((call) => call.record.recordId) as never[] } })).toBe(LOAD.length);
    expect(await testApp.db.collection('usage_events').countDocuments({ $or: [{ rollupsPending: { $exists: true } }, { rollupsLeaseUntil: { $exists: true } }] })).toBe(0);

    const day = await rollup(`day:${LOAD_DAY}`);
    expect(day?.totals).toEqual(metricsOf(LOAD));
    expect((await rollup('month:2030-08'))?.totals).toEqual(metricsOf(LOAD));
    expect(day?.cells.embedding['openai/gpt-4%2E1']).toEqual(metricsOf(LOAD.filter((call) => call.record.operationType === 'embedding' && call.record.model === 'openai/gpt-4.1')));
    expect(day?.providers.openrouter).toEqual(metricsOf(LOAD));
    expect(day?.tiers.JIVE).toEqual(
      ((calls) => {
        const metrics = metricsOf(calls);
        return { inputTokens: metrics.promptTokens + metrics.embeddingTokens, outputTokens: metrics.completionTokens, totalTokens: metrics.totalTokens, costMicros: metrics.costMicros, requestCount: calls.length };
      })(LOAD.filter((call) => call.meta.tier === 'JIVE')),
    );
    const toolCalls = LOAD.filter((call) => call.meta.tool);
    expect(day?.tools['search%2Eweb'].JIVE).toEqual({
      callCount: toolCalls.length,
      successCount: toolCalls.filter((call) => call.record.success).length,
      failureCount: toolCalls.filter((call) => !call.record.success).length,
      totalExecutionTimeMs: toolCalls.reduce((sum, call) => sum + call.record.latencyMs, 0),
    });
    for (const userId of LOAD_USERS) {
      const expected = metricsOf(LOAD.filter((call) => call.userId === userId));
      const userDay = await userRollup(`day:${LOAD_DAY}:${userId}`);
      expect({ userId, totals: userDay?.totals }).toEqual({ userId, totals: expected });
      expect(userDay).toMatchObject({ granularity: 'day', period: LOAD_DAY, userId });
      expect(userDay?.expiresAt.getTime()).toBeGreaterThan(Date.parse(`${LOAD_DAY}T10:00:00Z`) + 399 * 86_400_000);
      expect({ userId, totals: (await userRollup(`month:2030-08:${userId}`))?.totals }).toEqual({ userId, totals: expected });
    }

    // Budget alerts see each aggregate's totals after the write: every scope at or above its threshold, and only those.
    const alerts = await testApp.db.collection('budget_alerts').find({ 'payload.periodKey': LOAD_DAY }).toArray();
    const crossing = LOAD_USERS.filter((userId) => tokensOf(userId) >= USER_DAILY_TOKENS);
    expect(crossing.length).toBeGreaterThan(0);
    expect(crossing.length).toBeLessThan(LOAD_USERS.length);
    expect(alerts.map((alert) => String(alert._id)).sort()).toEqual(
      [
        `budget|global|*|tokens|day|${LOAD_DAY}|abs:${GLOBAL_DAILY_TOKENS}`,
        ...crossing.map((userId) => `budget|user|${userId}|tokens|day|${LOAD_DAY}|abs:${USER_DAILY_TOKENS}`),
      ].sort(),
    );
    for (const alert of alerts) expect(alert.payload.value).toBeGreaterThanOrEqual(alert.payload.threshold);
    expect(commandsOn('find', 'usage_rollups').length).toBeLessThanOrEqual(inserts.length);

    // High usage is judged per event.
    const high = LOAD.filter((call) => call.record.operationType === 'embedding' && metricsOf([call]).totalTokens > HIGH_USAGE_EMBEDDING_TOKENS * HIGH_USAGE_MULTIPLIER);
    expect(high.length).toBeGreaterThan(0);
    const { text } = await request(testApp.http).get('/metrics/prometheus').expect(200);
    expect(text).toContain(`token_ledger_high_usage_operations_total{operation="embedding"} ${high.length}\n`);
  });

  it('counts an event once when its replay arrives in the same commit, or in a later one', async () => {
    const call = (recordId: string, promptTokens: number): Call => ({
      userId: 'dup-user',
      record: createUsageRecord({ recordId, occurredAt: new Date('2030-09-01T10:00:00Z'), promptTokens, completionTokens: 1, costMicros: 2 }),
      meta: { tier: 'FREE' },
    });
    // The first call is committed alone; the rest wait for it and share the next commit.
    await Promise.all([record(call('dup-a', 10)), record(call('dup-b', 20)), record(call('dup-b', 999)), record(call('dup-c', 30))]);
    const shared = commandsOn('insert', 'usage_events').find((event) => (event.command.documents as Document[]).filter((document) => document._id === 'dup-b').length === 2);
    expect(shared).toBeDefined();
    await Promise.all([record(call('dup-a', 10)), record(call('dup-c', 555)), record(call('dup-d', 40))]);

    const expected = { requests: 4, promptTokens: 100, completionTokens: 4, totalTokens: 104, costMicros: 8 };
    expect((await userRollup('day:2030-09-01:dup-user'))?.totals).toMatchObject(expected);
    expect((await userRollup('month:2030-09:dup-user'))?.totals).toMatchObject(expected);
    expect((await rollup('month:2030-09'))?.totals).toMatchObject(expected);
    expect(await testApp.db.collection('usage_events').countDocuments({ user_id: 'dup-user', rollupsPending: { $exists: true } })).toBe(0);
    expect((await testApp.db.collection('usage_events').findOne({ _id: 'dup-b' as never }))?.prompt_tokens).toBe(20);
  });

  it('stores the records whose aggregate write fails, releases them to the sweep, which completes them exactly once', async () => {
    // A day aggregate MongoDB cannot $inc into (PathNotViable): every event of that day fails its day update, nothing else.
    await testApp.db.collection('usage_rollups').insertOne({ _id: 'day:2030-10-02' as never, granularity: 'day', period: '2030-10-02', totals: 'corrupt' });
    const calls: Call[] = Array.from({ length: 40 }, (_, i) => ({
      userId: `faulty-user-${i % 4}`,
      record: createUsageRecord({ recordId: `faulty-${i}`, occurredAt: new Date(i < 30 ? '2030-10-02T10:00:00Z' : '2030-10-03T10:00:00Z'), promptTokens: 10 + i, completionTokens: 1, costMicros: i }),
      meta: { tier: 'FREE' },
    }));
    const onPoisonedDay = calls.slice(0, 30);
    const onCleanDay = calls.slice(30);

    // Every event is stored, so every caller is answered; the aggregate writes follow.
    const results = await Promise.allSettled(calls.map(record));
    expect(results.map((result) => result.status)).toEqual(Array(40).fill('fulfilled'));
    await events.flushed();

    const stored = await testApp.db.collection('usage_events').find({ _id: { $in: onPoisonedDay.map((call) => call.record.recordId) as never[] } }).toArray();
    expect(stored).toHaveLength(30);
    for (const event of stored) {
      expect({ id: event._id, pending: event.rollupsPending, lease: event.rollupsLeaseUntil }).toEqual({ id: event._id, pending: ['day'], lease: new Date(0) });
    }
    const snapshot = async () => ({
      month: (await rollup('month:2030-10'))?.totals,
      cleanDay: (await rollup('day:2030-10-03'))?.totals,
      users: await testApp.db.collection('usage_user_rollups').find({ userId: /^faulty-user-/ }, { projection: { totals: 1 } }).sort({ _id: 1 }).toArray(),
    });
    const applied = await snapshot();
    expect(applied.month).toEqual(metricsOf(calls));
    expect(applied.cleanDay).toEqual(metricsOf(onCleanDay));
    expect(applied.users.find((document) => String(document._id) === 'month:2030-10:faulty-user-1')?.totals).toEqual(metricsOf(calls.filter((call) => call.userId === 'faulty-user-1')));

    // The sweep takes the released events over and adds only the missing aggregate.
    await testApp.db.collection('usage_rollups').deleteOne({ _id: 'day:2030-10-02' as never });
    expect(await events.sweepPendingRollups()).toBe(30);
    expect((await rollup('day:2030-10-02'))?.totals).toEqual(metricsOf(onPoisonedDay));
    expect(await snapshot()).toEqual(applied);
    expect(await testApp.db.collection('usage_events').countDocuments({ user_id: /^faulty-user-/, rollupsPending: { $exists: true } })).toBe(0);

    await Promise.all(calls.map(record));
    expect((await rollup('day:2030-10-02'))?.totals).toEqual(metricsOf(onPoisonedDay));
    expect(await snapshot()).toEqual(applied);
  });

  it('never counts an event twice when an aggregate write landed but its reply was lost', async () => {
    const userRollups = testApp.app.get<Model<UserUsageRollup>>(getModelToken(UserUsageRollup.name)).collection;
    const bulkWrite = userRollups.bulkWrite.bind(userRollups);
    const lostReply = jest.spyOn(userRollups, 'bulkWrite').mockImplementation(async (...args: Parameters<typeof bulkWrite>) => {
      await bulkWrite(...args);
      throw new MongoNetworkError('connection 7 to 127.0.0.1:27017 closed');
    });
    const calls: Call[] = Array.from({ length: 5 }, (_, i) => ({
      userId: 'lost-reply-user',
      record: createUsageRecord({ recordId: `lost-reply-${i}`, occurredAt: new Date('2030-11-05T10:00:00Z'), promptTokens: 100, completionTokens: 0, costMicros: 1 }),
      meta: { tier: 'FREE' },
    }));
    let lostReplies: number;
    try {
      // Stored, so answered; the user aggregates' lost reply counts them as applied.
      await Promise.all(calls.map(record));
      await events.flushed();
    } finally {
      lostReplies = lostReply.mock.calls.length;
      lostReply.mockRestore();
    }
    expect(lostReplies).toBeGreaterThan(0);
    expect(await events.sweepPendingRollups()).toBe(0);
    // A replay of every record (as the outbox would send after a failure elsewhere) adds nothing.
    await Promise.all(calls.map(record));
    expect((await userRollup('month:2030-11:lost-reply-user'))?.totals).toMatchObject({ requests: 5, totalTokens: 500 });
    expect((await rollup('month:2030-11'))?.totals).toMatchObject({ requests: 5, totalTokens: 500 });
    expect(await testApp.db.collection('usage_events').countDocuments({ user_id: 'lost-reply-user', rollupsPending: { $exists: true } })).toBe(0);
  });

  describe('without budget alerts', () => {
    let quiet: TestApp;
    const quietCommands: CommandStartedEvent[] = [];

    beforeAll(async () => {
      quiet = await createTestApp({ LOG_DIR: logDir, MONGODB_MONITOR_COMMANDS: true });
      quiet.app
        .get<Connection>(getConnectionToken())
        .getClient()
        .on('commandStarted', (event: CommandStartedEvent) => quietCommands.push(event));
    });

    afterAll(async () => {
      await quiet.close();
    });

    it('reads no aggregate totals back, and writes everything queued before shutting down', async () => {
      const service = quiet.app.get(UsageEventsService);
      const calls: Call[] = Array.from({ length: 50 }, (_, i) => ({
        userId: `shutdown-user-${i % 5}`,
        record: createUsageRecord({ recordId: `shutdown-${i}`, occurredAt: new Date('2030-12-01T10:00:00Z'), promptTokens: 7, completionTokens: 3, costMicros: 1 }),
        meta: { tier: 'FREE' },
      }));
      const results = Promise.allSettled(calls.map((call) => service.record(call.userId, call.record, call.meta)));
      await quiet.app.close();

      expect((await results).map((result) => result.status)).toEqual(Array(50).fill('fulfilled'));
      expect((await quiet.db.collection('usage_rollups').findOne({ _id: 'month:2030-12' as never }))?.totals).toMatchObject({ requests: 50, totalTokens: 500 });
      expect(await quiet.db.collection('usage_events').countDocuments({ rollupsPending: { $exists: true } })).toBe(0);
      const reads = quietCommands.filter((event) => event.commandName === 'find' && ['usage_rollups', 'usage_user_rollups'].includes(event.command.find as string));
      expect(reads).toHaveLength(0);
      expect(quietCommands.filter((event) => event.commandName === 'insert' && event.command.insert === 'usage_events').length).toBeLessThan(calls.length);
    });
  });
});
