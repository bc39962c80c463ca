import request from 'supertest';
import { TokenizerService } from '../src/ai/tokenizer.service';
import { ASSISTANT_INSTRUCTIONS } from '../src/chat/orcha-chat.service';
import { Clock } from '../src/common/clock';
import { UsageLimitsService, WINDOW_MS } from '../src/limits/usage-limits.service';
import { TokenTrackingService } from '../src/token-tracking/token-tracking.service';
import { FakeProviderServer } from './support/fake-provider.server';
import { createTestApp, TestApp } from './support/test-app';

const MODEL = 'gpt-4o-mini';
const MAX_TOKENS = 100;

describe(UsageLimitsService.name, () => {
  let fake: FakeProviderServer;
  let testApp: TestApp;
  let auth: { authorization: string };

  const chat = (userId: string, message = 'Hello') =>
    request(testApp.http).post('/api/v1/orcha/chat').set(auth).send({ user_id: userId, message });
  const setLimits = (userId: string, limits: Record<string, unknown>) =>
    request(testApp.http).put(`/user/${userId}/limits`).set(auth).send(limits).expect(200);
  const promptTokens = (message: string) =>
    testApp.app.get(TokenizerService).countMessages(
      [
        { role: 'system', content: ASSISTANT_INSTRUCTIONS },
        { role: 'user', content: message },
      ],
      MODEL,
    );

  beforeAll(async () => {
    fake = await FakeProviderServer.start();
    testApp = await createTestApp({
      AI_PROVIDER: 'compatible',
      AI_BASE_URL: fake.baseUrl,
      AI_API_KEY: 'sk-limits-test',
      AI_PRIMARY_MODEL: MODEL,
      AI_FALLBACK_MODEL: 'none',
      AI_MAX_TOKENS: MAX_TOKENS,
      PLAN_CACHE_MS: 0,
    });
    auth = { authorization: `Bearer ${testApp.adminKey}` };
  });

  afterEach(() => fake.reset());

  afterAll(async () => {
    await testApp.close();
    await fake.stop();
  });

  describe('24-hour rolling window', () => {
    it('answers orcha chat with the seed token_usage and accumulates the window', async () => {
      fake.script(MODEL, { text: 'Hi there', usage: { prompt_tokens: 20, completion_tokens: 5, total_tokens: 25 } });
      const first = await chat('window-user').expect(200);
      expect(first.body).toMatchObject({ status: 'ok', message: 'Hi there', model: MODEL });
      expect(first.body.token_usage).toMatchObject({
        current_usage: 25,
        tokens_added: 25,
        tracking_enabled: true,
        prompt_tokens: 20,
        completion_tokens: 5,
        total_tokens: 25,
        embedding_tokens: 0,
        estimated: false,
      });
      expect(first.body.token_usage.cost_estimate_usd).toBeCloseTo((20 * 0.15 + 5 * 0.6) / 1e6, 9);
      const resetAt = Date.parse(first.body.token_usage.reset_at);
      expect(Math.abs(resetAt - (Date.now() + WINDOW_MS))).toBeLessThan(10_000);

      fake.script(MODEL, { text: 'Again', usage: { prompt_tokens: 30, completion_tokens: 10, total_tokens: 40 } });
      const second = await chat('window-user').expect(200);
      expect(second.body.token_usage).toMatchObject({ current_usage: 65, tokens_added: 40 });
      // The window resets 24 h after FIRST use; later use does not extend it.
      expect(second.body.token_usage.reset_at).toBe(first.body.token_usage.reset_at);

      expect(second.headers['x-token-ledger-tier']).toBe('FREE');
      expect(Number(second.headers['x-ratelimit-remaining-tokens'])).toBe(100_000 - 65);
      expect(second.headers['x-ratelimit-reset-tokens']).toBe(first.body.token_usage.reset_at);

      const usage = await request(testApp.http).get('/api/v1/tokens/usage/window-user').set(auth).expect(200);
      expect(usage.body).toMatchObject({ status: 'ok', user_id: 'window-user', current_usage: 65, tracking_enabled: true, window_hours: 24, tier: 'FREE' });
      expect(usage.body.reset_at).toBe(first.body.token_usage.reset_at);

      // The ledger got the same records.
      const ledger = await testApp.db.collection('user_token_usage').findOne({ userId: 'window-user' });
      expect(ledger).toMatchObject({ totalTokens: 65, requestCount: 2 });
    });

    it('expires 24 hours after first use (clock moved forward) and restarts on the next use', async () => {
      fake.script(MODEL, { text: 'x', usage: { prompt_tokens: 7, completion_tokens: 3, total_tokens: 10 } });
      await chat('expiry-user').expect(200);
      const clock = testApp.app.get(Clock);
      clock.advance(WINDOW_MS - 1000);
      let usage = await request(testApp.http).get('/api/v1/tokens/usage/expiry-user').set(auth).expect(200);
      expect(usage.body.current_usage).toBe(10);
      clock.advance(2000);
      usage = await request(testApp.http).get('/api/v1/tokens/usage/expiry-user').set(auth).expect(200);
      expect(usage.body).toMatchObject({ current_usage: 0, tracking_enabled: true });
      // An empty window has no first use yet: the earliest it can reset is 24 h from now (never null, which a frontend shows as 1970).
      expect(Math.abs(Date.parse(usage.body.reset_at) - (clock.now() + WINDOW_MS))).toBeLessThan(10_000);

      fake.script(MODEL, { text: 'y', usage: { prompt_tokens: 2, completion_tokens: 2, total_tokens: 4 } });
      const next = await chat('expiry-user').expect(200);
      expect(next.body.token_usage.current_usage).toBe(4);
      expect(Math.abs(Date.parse(next.body.token_usage.reset_at) - (clock.now() + WINDOW_MS))).toBeLessThan(10_000);
    });

    it('clears the window on the admin reset endpoint', async () => {
      fake.script(MODEL, { text: 'x', usage: { prompt_tokens: 7, completion_tokens: 3, total_tokens: 10 } });
      await chat('reset-user').expect(200);
      const reset = await request(testApp.http).post('/api/v1/tokens/reset/reset-user').set(auth).expect(200);
      expect(reset.body).toMatchObject({ status: 'ok', current_usage: 0, tracking_enabled: true });
      const now = testApp.app.get(Clock).now();
      expect(Math.abs(Date.parse(reset.body.reset_at) - (now + WINDOW_MS))).toBeLessThan(10_000);
      const after = await request(testApp.http).get('/api/v1/tokens/usage/reset-user').set(auth).expect(200);
      expect(after.body).toMatchObject({ current_usage: 0, tracking_enabled: true });
      expect(Math.abs(Date.parse(after.body.reset_at) - (now + WINDOW_MS))).toBeLessThan(10_000);
      const ledger = await testApp.db.collection('user_token_usage').findOne({ userId: 'reset-user' });
      expect(ledger?.totalTokens).toBe(10);
    });

    it('rejects a bad user id with 400', async () => {
      const response = await request(testApp.http).get('/api/v1/tokens/usage/bad%20id').set(auth).expect(400);
      expect(response.body.message).toContain('userId');
    });
  });

  describe('limits enforced before the provider is called', () => {
    it('admits exactly as many concurrent requests as the limit holds, refusing the rest with 429', async () => {
      const userId = 'burst-user';
      const reservation = promptTokens('Burst') + MAX_TOKENS;
      await setLimits(userId, { rolling24hTokens: 50 * reservation, dailyTokens: null, monthlyCostUsd: null });
      // Every call uses exactly what it reserved, so no room is freed by settling.
      const usage = { prompt_tokens: reservation - MAX_TOKENS, completion_tokens: MAX_TOKENS, total_tokens: reservation };
      fake.script(MODEL, ...Array.from({ length: 200 }, () => ({ text: 'ok', usage, delayMs: 20 })));

      const responses = await Promise.all(Array.from({ length: 200 }, () => chat(userId, 'Burst')));
      const ok = responses.filter((response) => response.status === 200);
      const refused = responses.filter((response) => response.status === 429);
      expect(ok).toHaveLength(50);
      expect(refused).toHaveLength(150);
      expect(refused[0].body).toMatchObject({ statusCode: 429, limit: 'rolling_24h_tokens', max: 50 * reservation });
      expect(refused[0].body.message).toMatch(/24-hour token limit of \d+ tokens reached; resets at /);
      expect(Number(refused[0].headers['retry-after'])).toBeGreaterThan(0);
      expect(fake.requests).toHaveLength(50);

      const ledger = await testApp.db.collection('user_token_usage').findOne({ userId });
      expect(ledger!.totalTokens).toBe(50 * reservation);
      expect(ledger!.totalTokens).toBeLessThanOrEqual(50 * reservation);
    });

    it('lowers max_tokens to what the limit leaves instead of refusing', async () => {
      const userId = 'clamp-user';
      const prompt = promptTokens('Clamp');
      await setLimits(userId, { rolling24hTokens: prompt + 40 });
      fake.script(MODEL, { text: 'short', usage: { prompt_tokens: prompt, completion_tokens: 40, total_tokens: prompt + 40 } });
      await chat(userId, 'Clamp').expect(200);
      expect(fake.requests[0].body?.max_tokens).toBe(40);

      const refused = await chat(userId, 'Clamp').expect(429);
      expect(refused.body.limit).toBe('rolling_24h_tokens');
      expect(fake.requests).toHaveLength(1);
    });

    it('seeds the daily counter from the ledger, so usage recorded elsewhere counts', async () => {
      const userId = 'daily-user';
      await testApp.app.get(TokenTrackingService).trackTokenUsage(userId, {
        operationType: 'chat_completion',
        model: MODEL,
        provider: 'compatible',
        promptTokens: 900,
        completionTokens: 100,
        costMicros: 0,
        costSource: 'catalog',
        latencyMs: 1,
        success: true,
      });
      await setLimits(userId, { rolling24hTokens: null, dailyTokens: 1000 });
      const refused = await chat(userId).expect(429);
      expect(refused.body).toMatchObject({ limit: 'daily_tokens', used: 1000, max: 1000 });
      const tomorrow = new Date(testApp.app.get(Clock).now() + 86_400_000).toISOString().slice(0, 10);
      expect(Date.parse(refused.body.resetsAt)).toBe(Date.parse(tomorrow));
      expect(fake.requests).toHaveLength(0);
    });

    it('enforces the monthly cost limit', async () => {
      const userId = 'cost-user';
      await setLimits(userId, { rolling24hTokens: null, dailyTokens: null, monthlyCostUsd: 0 });
      const refused = await chat(userId).expect(429);
      expect(refused.body.limit).toBe('monthly_cost');
      expect(refused.body.message).toContain('monthly cost limit of $0.00');
    });

    it('frees the reservation of a call the provider never billed', async () => {
      const userId = 'failed-call-user';
      const reservation = promptTokens('Fail') + MAX_TOKENS;
      await setLimits(userId, { rolling24hTokens: reservation, dailyTokens: null, monthlyCostUsd: null });
      fake.script(MODEL, { status: 500 });
      await chat(userId, 'Fail').expect(502);
      fake.script(MODEL, { text: 'ok', usage: { prompt_tokens: 5, completion_tokens: 5, total_tokens: 10 } });
      await chat(userId, 'Fail').expect(200);
    });

    it('lets the reservation of a crashed request expire', async () => {
      const limits = testApp.app.get(UsageLimitsService);
      const userId = 'crashed-user';
      await setLimits(userId, { rolling24hTokens: 1000, dailyTokens: null, monthlyCostUsd: null });
      await limits.reserve({ userId, promptTokens: 500, maxCompletionTokens: 500, microsPerToken: 0 });
      await expect(limits.reserve({ userId, promptTokens: 500, maxCompletionTokens: 500, microsPerToken: 0 })).rejects.toMatchObject({ status: 429 });
      testApp.app.get(Clock).advance(testApp.config.AI_TIMEOUT_MS * 3 + 1);
      await expect(limits.reserve({ userId, promptTokens: 500, maxCompletionTokens: 500, microsPerToken: 0 })).resolves.toMatchObject({ enforced: true });
    });

    it('sets tiers and rejects unknown ones', async () => {
      const set = await request(testApp.http).put('/user/tier-user/tier').set(auth).send({ tier: 'JIGGA' }).expect(200);
      expect(set.body).toMatchObject({ userId: 'tier-user', tier: 'JIGGA', limits: { rolling24hTokens: null, dailyTokens: null, monthlyCostUsd: null } });
      const bad = await request(testApp.http).put('/user/tier-user/tier').set(auth).send({ tier: 'PLATINUM' }).expect(400);
      expect(bad.body.message).toContain('tier must be one of FREE, JIVE, JIGGA');
      const invalid = await request(testApp.http).put('/user/tier-user/limits').set(auth).send({ dailyTokens: -5 }).expect(400);
      expect(invalid.body.message).toContain('dailyTokens');
    });
  });

  describe('without Redis', () => {
    let offline: TestApp;

    beforeAll(async () => {
      offline = await createTestApp({
        AI_PROVIDER: 'compatible',
        AI_BASE_URL: fake.baseUrl,
        AI_API_KEY: 'sk-limits-test',
        AI_PRIMARY_MODEL: MODEL,
        AI_FALLBACK_MODEL: 'none',
        REDIS_URL: 'redis://127.0.0.1:1',
        TIER_LIMITS: JSON.stringify({ FREE: { rolling24hTokens: 1000, failMode: 'open' }, LOCKED: { rolling24hTokens: 1000, failMode: 'closed' } }),
      });
    });

    afterAll(() => offline.close());

    it('keeps answering with tracking_enabled false when the tier fails open', async () => {
      fake.script(MODEL, { text: 'still here', usage: { prompt_tokens: 5, completion_tokens: 5, total_tokens: 10 } });
      const response = await request(offline.http)
        .post('/api/v1/orcha/chat')
        .set({ authorization: `Bearer ${offline.adminKey}` })
        .send({ user_id: 'open-user', message: 'hi' })
        .expect(200);
      expect(response.body.token_usage).toMatchObject({ tracking_enabled: false, tokens_added: 10, current_usage: 0, reset_at: null });
      const usage = await request(offline.http).get('/api/v1/tokens/usage/open-user').set({ authorization: `Bearer ${offline.adminKey}` }).expect(200);
      expect(usage.body).toMatchObject({ tracking_enabled: false, current_usage: 0 });
      expect((await offline.db.collection('user_token_usage').findOne({ userId: 'open-user' }))?.totalTokens).toBe(10);
    });

    it('refuses with 503 when the tier fails closed', async () => {
      await request(offline.http).put('/user/closed-user/tier').set({ authorization: `Bearer ${offline.adminKey}` }).send({ tier: 'LOCKED' }).expect(200);
      const response = await request(offline.http)
        .post('/api/v1/orcha/chat')
        .set({ authorization: `Bearer ${offline.adminKey}` })
        .send({ user_id: 'closed-user', message: 'hi' })
        .expect(503);
      expect(response.body.message).toContain('fails closed');
      expect(fake.requests).toHaveLength(0);
    });
  });
});
