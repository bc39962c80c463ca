import { getModelToken } from '@nestjs/mongoose';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MongoNetworkError } from 'mongodb';
import type { Model } from 'mongoose';
import request from 'supertest';
import { UsageEvent } from '../src/analytics/usage-event.schema';
import { RecordedEvent, UsageEventWriter } from '../src/analytics/usage-event.writer';
import { UsageEventsService } from '../src/analytics/usage-events.service';
import { UsageLogWriter, usageLogFileName } from '../src/analytics/usage-log.writer';
import { Clock } from '../src/common/clock';
import { createTestApp, TestApp } from './support/test-app';
import { createUsageRecord } from './support/usage-record.factory';

const NOW = Date.parse('2031-02-10T12:00:00Z');
const LEASE_MS = 30_000;

/** A usage event as a writer that crashed after inserting it leaves it: every aggregate still pending. */
function crashedEvent(id: string, day: string, leaseUntil: number, userId: string | null = 'sweep-user'): Record<string, unknown> {
  return {
    _id: id,
    timestamp: new Date(`${day}T10:00:00Z`),
    user_id: userId,
    operation_type: 'embedding',
    model_name: 'openai/text-embedding-3-small',
    prompt_tokens: 0,
    completion_tokens: 0,
    embedding_tokens: 40,
    total_tokens: 40,
    cost_micros: 3,
    cost_estimate: 0.000003,
    response_time: 0.2,
    success: false,
    error_message: 'crashed',
    provider: 'openrouter',
    tier: 'FREE',
    costSource: 'catalog',
    estimated: false,
    cacheHit: false,
    requestId: null,
    rollupsPending: userId === null ? ['day', 'month'] : ['day', 'month', 'userDay', 'userMonth'],
    rollupsLeaseUntil: new Date(leaseUntil),
  };
}

/** Polls until `check` passes or the deadline passes (then its last failure is thrown). */
async function eventually(check: () => Promise<void>, deadlineMs = 10_000): Promise<void> {
  const deadline = Date.now() + deadlineMs;
  for (;;) {
    try {
      return await check();
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
}

describe(`${UsageEventsService.name} sweep of pending aggregates`, () => {
  let testApp: TestApp;
  let events: UsageEventsService;
  let writer: UsageEventWriter;
  let clock: Clock;
  let logDir: string;

  const rollup = async (id: string) => (await testApp.db.collection('usage_rollups').findOne({ _id: id as never }))?.totals;
  const userRollup = async (id: string) => (await testApp.db.collection('usage_user_rollups').findOne({ _id: id as never }))?.totals;
  const stored = (id: string) => testApp.db.collection('usage_events').findOne({ _id: id as never });
  const logLines = async (day: string) => {
    await testApp.app.get(UsageLogWriter).flush();
    const file = join(logDir, usageLogFileName(day));
    if (!existsSync(file)) return [];
    return readFileSync(file, 'utf8').trim().split('\n').map((line) => JSON.parse(line) as Record<string, unknown>);
  };

  beforeAll(async () => {
    logDir = mkdtempSync(join(tmpdir(), 'usage-sweep-'));
    // Sweeps are run by hand here; the periodic sweeper has a test of its own below.
    testApp = await createTestApp({ LOG_DIR: logDir, ROLLUP_SWEEP_INTERVAL_MS: 0 });
    clock = testApp.app.get(Clock);
    clock.advance(NOW - clock.now());
    events = testApp.app.get(UsageEventsService);
    writer = testApp.app.get(UsageEventWriter);
  });

  afterAll(async () => {
    await testApp.close();
    rmSync(logDir, { recursive: true, force: true });
  });

  it('keeps the pending markers in a sparse index', async () => {
    const indexes = await testApp.db.collection('usage_events').indexes();
    expect(indexes.find((index) => index.key.rollupsLeaseUntil === 1)).toMatchObject({ sparse: true });
  });

  it('completes an event a crashed writer left pending once its lease ran out, with its log line and metrics, once', async () => {
    await testApp.db.collection('usage_events').insertOne(crashedEvent('crashed-1', '2031-01-05', NOW - 1_000) as never);

    expect(await events.sweepPendingRollups()).toBe(1);
    await events.settled();
    expect(await events.sweepPendingRollups()).toBe(0);

    const once = { requests: 1, failures: 1, embeddingTokens: 40, totalTokens: 40, costMicros: 3 };
    expect(await rollup('day:2031-01-05')).toMatchObject(once);
    expect(await rollup('month:2031-01')).toMatchObject(once);
    expect(await userRollup('day:2031-01-05:sweep-user')).toMatchObject(once);
    expect(await userRollup('month:2031-01:sweep-user')).toMatchObject(once);
    const event = await stored('crashed-1');
    expect(event).not.toHaveProperty('rollupsPending');
    expect(event).not.toHaveProperty('rollupsLeaseUntil');

    expect((await logLines('2031-01-05')).filter((line) => line.record_id === 'crashed-1')).toHaveLength(1);
    const { text } = await request(testApp.http).get('/metrics/prometheus').expect(200);
    expect(text).toContain('token_ledger_usage_events_total{operation="embedding",provider="openrouter",success="false"} 1\n');

    // A replay arriving now (the outbox) finds nothing left to do.
    await events.record('sweep-user', createUsageRecord({ recordId: 'crashed-1', occurredAt: new Date('2031-01-05T10:00:00Z'), promptTokens: 999 }));
    expect(await rollup('day:2031-01-05')).toMatchObject(once);
  });

  it('counts an event once when two sweepers take it over at the same time', async () => {
    const ids = Array.from({ length: 30 }, (_, i) => `concurrent-${i}`);
    await testApp.db.collection('usage_events').insertMany(ids.map((id) => crashedEvent(id, '2031-01-06', NOW - 1_000, 'concurrent-user')) as never[]);

    const recorded: RecordedEvent[] = [];
    const counts = await Promise.all([writer.sweepExpired((event) => recorded.push(event)), writer.sweepExpired((event) => recorded.push(event))]);

    expect(counts[0] + counts[1]).toBe(ids.length);
    expect(recorded.map((event) => event.event._id).sort()).toEqual([...ids].sort());
    expect(await rollup('day:2031-01-06')).toMatchObject({ requests: ids.length, totalTokens: 40 * ids.length });
    expect(await userRollup('month:2031-01:concurrent-user')).toMatchObject({ requests: ids.length, totalTokens: 40 * ids.length });
    expect(await testApp.db.collection('usage_events').countDocuments({ _id: { $in: ids as never[] }, rollupsLeaseUntil: { $exists: true } })).toBe(0);
  });

  it('sweeps more events than fit in one batch', async () => {
    const ids = Array.from({ length: 250 }, (_, i) => `many-${String(i).padStart(3, '0')}`);
    await testApp.db.collection('usage_events').insertMany(ids.map((id) => crashedEvent(id, '2031-01-07', NOW - 1_000, null)) as never[]);

    expect(await events.sweepPendingRollups()).toBe(ids.length);
    expect(await rollup('day:2031-01-07')).toMatchObject({ requests: ids.length });
  });

  it('leaves an event whose lease is live alone until the lease runs out', async () => {
    await testApp.db.collection('usage_events').insertOne(crashedEvent('leased-1', '2031-01-08', clock.now() + LEASE_MS) as never);

    expect(await events.sweepPendingRollups()).toBe(0);
    expect(await rollup('day:2031-01-08')).toBeUndefined();
    expect((await stored('leased-1'))?.rollupsPending).toEqual(['day', 'month', 'userDay', 'userMonth']);

    clock.advance(LEASE_MS + 1);
    expect(await events.sweepPendingRollups()).toBe(1);
    expect(await rollup('day:2031-01-08')).toMatchObject({ requests: 1, totalTokens: 40 });
  });

  it('does not count an event twice when clearing its markers failed after its aggregates were applied', async () => {
    const collection = testApp.app.get<Model<UsageEvent>>(getModelToken(UsageEvent.name)).collection;
    // Every marker clearing fails until restored (reply lost before the server applied it).
    const lostClearing = jest.spyOn(collection, 'bulkWrite').mockRejectedValue(new MongoNetworkError('connection 9 to 127.0.0.1:27017 closed'));
    try {
      await events.record('unsettled-user', createUsageRecord({ recordId: 'unsettled-1', occurredAt: new Date('2031-01-09T10:00:00Z'), promptTokens: 10, completionTokens: 5 }));
      await events.flushed();
      const once = { requests: 1, totalTokens: 15 };
      expect(await rollup('day:2031-01-09')).toMatchObject(once);
      expect((await stored('unsettled-1'))?.rollupsPending).toEqual(['day', 'month', 'userDay', 'userMonth']);

      // The lease the insert took runs out; the retrying writer keeps extending it.
      clock.advance(LEASE_MS + 1);
      await eventually(async () => expect((await stored('unsettled-1'))?.rollupsLeaseUntil.getTime()).toBeGreaterThan(clock.now()));
      expect(await events.sweepPendingRollups()).toBe(0);
      expect(await rollup('day:2031-01-09')).toMatchObject(once);
    } finally {
      lostClearing.mockRestore();
    }

    await eventually(async () => expect(await stored('unsettled-1')).not.toHaveProperty('rollupsPending'));
    clock.advance(LEASE_MS + 1);
    expect(await events.sweepPendingRollups()).toBe(0);
    expect(await rollup('day:2031-01-09')).toMatchObject({ requests: 1, totalTokens: 15 });
    expect(await userRollup('month:2031-01:unsettled-user')).toMatchObject({ requests: 1, totalTokens: 15 });
  });

  describe('with a periodic sweeper', () => {
    let swept: TestApp;

    beforeAll(async () => {
      swept = await createTestApp({ LOG_DIR: logDir, ROLLUP_SWEEP_INTERVAL_MS: 50 });
    });

    afterAll(async () => {
      await swept.close();
    });

    it('completes pending events on its own', async () => {
      const leaseUntil = swept.app.get(Clock).now() - 1_000;
      await swept.db.collection('usage_events').insertMany([crashedEvent('periodic-1', '2031-01-10', leaseUntil), crashedEvent('periodic-2', '2031-01-10', leaseUntil)] as never[]);

      await eventually(async () => expect(await swept.db.collection('usage_events').countDocuments({ rollupsPending: { $exists: true } })).toBe(0));
      expect((await swept.db.collection('usage_rollups').findOne({ _id: 'day:2031-01-10' as never }))?.totals).toMatchObject({ requests: 2, totalTokens: 80 });
      expect((await swept.db.collection('usage_user_rollups').findOne({ _id: 'month:2031-01:sweep-user' as never }))?.totals).toMatchObject({ requests: 2, totalTokens: 80 });
    });
  });
});
