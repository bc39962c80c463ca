import { createHmac, timingSafeEqual } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import request from 'supertest';
import { AlertsService } from '../src/alerts/alerts.service';
import { UsageEventsService } from '../src/analytics/usage-events.service';
import type { ConfigOverrides } from '../src/config/app-config';
import { createTestApp, TestApp } from './support/test-app';
import { createUsageRecord } from './support/usage-record.factory';
import { WebhookReceiver } from './support/webhook-receiver';

const SECRET = 'webhook-secret-0123456789';

function verifySignature(headers: Record<string, unknown>, body: string): boolean {
  const timestamp = String(headers['x-token-ledger-timestamp']);
  const expected = Buffer.from(`sha256=${createHmac('sha256', SECRET).update(`${timestamp}.${body}`).digest('hex')}`);
  const presented = Buffer.from(String(headers['x-token-ledger-signature']));
  return presented.length === expected.length && timingSafeEqual(presented, expected) && Math.abs(Date.now() / 1000 - Number(timestamp)) < 300;
}

async function eventually<T>(probe: () => Promise<T | undefined>, timeoutMs = 5_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

describe(AlertsService.name, () => {
  let receiver: WebhookReceiver;
  let first: TestApp;
  let logDir: string;
  let config: ConfigOverrides;

  const record = (app: TestApp, userId: string, overrides: Parameters<typeof createUsageRecord>[0]) =>
    app.app.get(UsageEventsService).record(userId, createUsageRecord({ completionTokens: 0, ...overrides }), {});
  const settle = (app: TestApp) => app.app.get(UsageEventsService).settled();

  beforeAll(async () => {
    receiver = await WebhookReceiver.start();
    logDir = mkdtempSync(join(tmpdir(), 'alerts-'));
    config = {
      LOG_DIR: logDir,
      PLAN_CACHE_MS: 0,
      BUDGET_ALERTS: JSON.stringify({ global: { dailyTokens: 5000 }, user: { dailyCostUsd: 0.001, limitPercents: [50] } }),
      ALERT_WEBHOOK_URLS: receiver.url,
      ALERT_WEBHOOK_SECRET: SECRET,
      ALERT_WEBHOOK_RETRY_BASE_MS: 20,
      ALERT_WEBHOOK_MAX_ATTEMPTS: 4,
      HIGH_USAGE_MULTIPLIER: 5,
      HIGH_USAGE_EXPECTED_TOKENS: JSON.stringify({ embedding: 50 }),
    };
    first = await createTestApp(config);
    await first.api().put('/user/spender/limits').send({ dailyTokens: 1000 }).expect(200);
  });

  afterAll(async () => {
    await first.close();
    await receiver.stop();
    rmSync(logDir, { recursive: true, force: true });
  });

  it('POSTs a signed event when a user crosses a cost threshold, retrying with backoff until the receiver accepts it', async () => {
    receiver.failFirst = 2;
    await record(first, 'spender', { promptTokens: 100, costMicros: 1500 });
    await settle(first);
    await receiver.waitFor(() => receiver.delivered().length === 1);

    expect(receiver.received.map((hook) => hook.status)).toEqual([503, 503, 204]);
    const [{ headers, body, payload }] = receiver.delivered();
    expect(headers['content-type']).toBe('application/json');
    expect(verifySignature(headers, body)).toBe(true);
    expect(verifySignature({ ...headers, 'x-token-ledger-timestamp': String(Number(headers['x-token-ledger-timestamp']) + 1) }, body)).toBe(false);
    expect(payload).toMatchObject({
      type: 'budget_threshold_crossed',
      scope: 'user',
      userId: 'spender',
      metric: 'cost_usd',
      period: 'day',
      thresholdKind: 'absolute',
      threshold: 0.001,
      value: 0.0015,
    });
    expect(headers['x-token-ledger-event-id']).toBe(payload.id);
    const stored = await eventually(async () => {
      const alert = await first.db.collection('budget_alerts').findOne({ _id: payload.id as never });
      return alert?.status === 'delivered' ? alert : undefined;
    });
    expect(stored).toMatchObject({ deliveries: [expect.objectContaining({ url: receiver.url, attempts: 3, deliveredAt: expect.any(Date) })] });
  });

  it("alerts on a percentage of the user's own limit, and never twice for one threshold and period", async () => {
    receiver.failFirst = 0;
    receiver.received.length = 0;
    await record(first, 'spender', { promptTokens: 450, costMicros: 10 });
    await record(first, 'spender', { promptTokens: 10, costMicros: 10 });
    await settle(first);
    await receiver.waitFor(() => receiver.delivered().length === 1);
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(receiver.delivered().map(({ payload }) => [payload.metric, payload.thresholdKind, payload.percent, payload.limit, payload.threshold])).toEqual([
      ['tokens', 'percent_of_limit', 50, 1000, 500],
    ]);
  });

  it('counts an operation far above its expected tokens as high usage', async () => {
    await record(first, 'bulk-user', { operationType: 'embedding', promptTokens: 0, embeddingTokens: 251, costMicros: 5 });
    await record(first, 'bulk-user', { operationType: 'embedding', promptTokens: 0, embeddingTokens: 250, costMicros: 5 });
    await settle(first);
    const { text } = await request(first.http).get('/metrics/prometheus').expect(200);
    expect(text).toContain('token_ledger_high_usage_operations_total{operation="embedding"} 1\n');
  });

  it('keeps its promise across a restart: no alert is sent again, a new threshold still is', async () => {
    receiver.received.length = 0;
    await first.app.close();
    const second = await createTestApp({ ...config, MONGODB_DB_NAME: first.config.MONGODB_DB_NAME });
    try {
      await record(second, 'spender', { promptTokens: 5000, costMicros: 500 });
      await settle(second);
      await receiver.waitFor(() => receiver.delivered().length === 1);
      await new Promise((resolve) => setTimeout(resolve, 100));
      expect(receiver.delivered().map(({ payload }) => [payload.scope, payload.metric, payload.threshold])).toEqual([['global', 'tokens', 5000]]);
      // second.db is that app's own (unused) database; both apps use first's.
      expect(await first.db.collection('budget_alerts').countDocuments()).toBe(3);
    } finally {
      await second.close();
    }
  });

  it('redelivers an alert left pending by a crash once its lease has expired', async () => {
    const again = await createTestApp({ ...config, MONGODB_DB_NAME: first.config.MONGODB_DB_NAME });
    try {
      receiver.received.length = 0;
      await first.db.collection('budget_alerts').insertOne({
        _id: 'budget|global|*|cost_usd|day|2030-01-01|abs:1' as never,
        status: 'pending',
        payload: { id: 'budget|global|*|cost_usd|day|2030-01-01|abs:1', type: 'budget_threshold_crossed' },
        deliveries: [],
        leaseUntil: new Date(Date.now() - 1000),
        createdAt: new Date(),
      });
      expect(await again.app.get(AlertsService).sweep()).toBe(1);
      expect(receiver.delivered().map(({ payload }) => payload.id)).toEqual(['budget|global|*|cost_usd|day|2030-01-01|abs:1']);
      expect(await again.app.get(AlertsService).sweep()).toBe(0);
    } finally {
      await again.close();
    }
  });
});
