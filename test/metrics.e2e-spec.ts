import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import request from 'supertest';
import { UsageEventsService } from '../src/analytics/usage-events.service';
import { MetricsService } from '../src/metrics/metrics.service';
import { createTestApp, TestApp } from './support/test-app';
import { createUsageRecord } from './support/usage-record.factory';

const PROMTOOL = process.env.PROMTOOL ?? 'promtool';
const promtoolAvailable = spawnSync(PROMTOOL, ['--version'], { encoding: 'utf8' }).status === 0;

/** The value of one sample line (`name{labels} value`) of a Prometheus scrape, or undefined. */
function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((candidate) => candidate.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

describe(MetricsService.name, () => {
  let testApp: TestApp;
  let logDir: string;

  beforeAll(async () => {
    logDir = mkdtempSync(join(tmpdir(), 'metrics-'));
    testApp = await createTestApp({ LOG_DIR: logDir, PLAN_CACHE_MS: 0 });
    const events = testApp.app.get(UsageEventsService);
    await events.record('metrics-user', createUsageRecord({ promptTokens: 1250, completionTokens: 450, costMicros: 8500 }), {});
    await events.record('metrics-user', createUsageRecord({ operationType: 'embedding', promptTokens: 0, completionTokens: 0, embeddingTokens: 2500, costMicros: 50 }), {});
    // Traffic: a chat message (intent + answer), a 404, a limit refusal.
    await testApp.api().post('/chat/message').send({ username: 'metrics-user', message: 'What is plugin.yml?' }).expect(200);
    await testApp.api().get('/no/such/route').expect(404);
    await testApp.api().put('/user/limited-user/limits').send({ rolling24hTokens: 1 }).expect(200);
    await testApp.api().post('/api/v1/orcha/chat').send({ user_id: 'limited-user', message: 'Hello' }).expect(429);
    await testApp.api().get('/user/metrics-user/token-usage').expect(200);
  });

  afterAll(async () => {
    await testApp.close();
    rmSync(logDir, { recursive: true, force: true });
  });

  it('answers the seed 001 JSON without a key', async () => {
    const { body } = await request(testApp.http).get('/metrics').expect(200);
    expect(Object.keys(body).sort()).toEqual(['avg_latency_ms', 'errors_total', 'intent_frequency', 'requests_total', 'stage_distribution', 'token_usage']);
    expect(Object.keys(body.token_usage).sort()).toEqual(['total_completion_tokens', 'total_cost_usd', 'total_embedding_tokens', 'total_prompt_tokens']);
    // The chat message, the 404, the limits update, the refused chat and the ledger read (not /metrics itself).
    expect(body.requests_total).toBe(5);
    expect(body.errors_total).toBe(0);
    expect(body.avg_latency_ms).toBeGreaterThan(0);
    expect(body.stage_distribution).toMatchObject({ response: 2, embedding: 1, intent: 1 });
    expect(body.intent_frequency).toEqual({ info: 1 });
    expect(body.token_usage.total_prompt_tokens).toBeGreaterThan(1250);
    expect(body.token_usage.total_embedding_tokens).toBe(2500);
    expect(body.token_usage.total_cost_usd).toBeGreaterThanOrEqual(0.00855);
  });

  it('serves Prometheus text on Accept: text/plain and /metrics/prometheus, with bounded labels', async () => {
    const negotiated = await request(testApp.http).get('/metrics').set('accept', 'text/plain;version=0.0.4').expect(200);
    expect(negotiated.headers['content-type']).toMatch(/^text\/plain/);
    const { text } = await request(testApp.http).get('/metrics/prometheus').expect(200);
    expect(sample(text, 'noki_ai_tokens_total{type="embedding"}')).toBe(2500);
    expect(sample(text, 'noki_ai_tokens_total{type="prompt"}')).toBeGreaterThan(1250);
    expect(sample(text, 'noki_ai_cost_total')).toBeGreaterThanOrEqual(0.00855);
    expect(sample(text, 'token_ledger_tokens_total{type="prompt",model="openai/gpt-4o-mini",provider="openrouter",operation="rag_answer"}')).toBe(1250);
    expect(sample(text, 'token_ledger_cost_usd_total{model="openai/gpt-4o-mini",provider="openrouter",operation="rag_answer"}')).toBeCloseTo(0.0085, 9);
    expect(sample(text, 'token_ledger_limit_refusals_total{limit="rolling_24h_tokens"}')).toBe(1);
    expect(sample(text, 'token_ledger_http_requests_total{method="GET",route="/user/:userId/token-usage",status="200"}')).toBe(1);
    expect(sample(text, 'token_ledger_http_requests_total{method="GET",route="unmatched",status="404"}')).toBe(1);
    expect(text).not.toContain('metrics-user');
    expect(text).toContain('token_ledger_provider_latency_seconds_bucket{le="0.05",provider="simulated",operation="chat_intent"}');
    expect(text).toContain('token_ledger_http_request_duration_seconds_bucket');
    expect(sample(text, 'token_ledger_redis_up')).toBe(1);
    expect(sample(text, 'token_ledger_mongodb_up')).toBe(1);
    expect(sample(text, 'token_ledger_outbox_records')).toBe(0);
    expect(sample(text, 'token_ledger_outbox_oldest_age_seconds')).toBe(0);
    expect(sample(text, 'token_ledger_ledger_write_failures_total')).toBe(0);
  });

  it('passes promtool check metrics', async () => {
    if (!promtoolAvailable) {
      console.warn(
        '\n!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n' +
          `!!! SKIPPED: "${PROMTOOL}" not found, so the Prometheus exposition was NOT validated.\n` +
          '!!! Install it with: apt-get install -y prometheus   (.ci/run does)\n' +
          '!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n',
      );
      return;
    }
    const { text } = await request(testApp.http).get('/metrics').set('accept', 'application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5').expect(200);
    const check = spawnSync(PROMTOOL, ['check', 'metrics'], { input: text, encoding: 'utf8' });
    expect({ status: check.status, output: `${check.stdout}${check.stderr}`.trim() }).toEqual({ status: 0, output: '' });
  });

  describe('with METRICS_TOKEN', () => {
    let secured: TestApp;

    beforeAll(async () => {
      secured = await createTestApp({ LOG_DIR: logDir, METRICS_TOKEN: 'scrape-token-0123456789' });
    });

    afterAll(() => secured.close());

    it('requires the bearer token', async () => {
      const refused = await request(secured.http).get('/metrics').expect(401);
      expect(refused.headers['www-authenticate']).toContain('Bearer');
      await request(secured.http).get('/metrics/prometheus').set('authorization', 'Bearer wrong-token-0123456789').expect(401);
      await request(secured.http).get('/metrics').set('authorization', 'Bearer scrape-token-0123456789').expect(200);
      await request(secured.http).get('/metrics/prometheus').set('authorization', 'Bearer scrape-token-0123456789').expect(200);
    });
  });
});
