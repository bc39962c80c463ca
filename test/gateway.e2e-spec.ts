import OpenAI from 'openai';
import request from 'supertest';
import { GatewayService } from '../src/gateway/gateway.service';
import { FakeProviderServer } from './support/fake-provider.server';
import { createTestApp, TestApp } from './support/test-app';

const MODEL = 'gpt-4o-mini';

describe(GatewayService.name, () => {
  let fake: FakeProviderServer;
  let testApp: TestApp;
  let client: OpenAI;
  let userKey: string;

  const ledger = (userId: string) => testApp.db.collection('user_token_usage').findOne({ userId });
  const waitFor = async (check: () => Promise<boolean>, ms = 5000) => {
    const deadline = Date.now() + ms;
    while (!(await check())) {
      if (Date.now() > deadline) throw new Error('condition not met in time');
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  };

  beforeAll(async () => {
    fake = await FakeProviderServer.start();
    testApp = await createTestApp({
      AI_PROVIDER: 'compatible',
      AI_BASE_URL: fake.baseUrl,
      AI_API_KEY: 'sk-gateway-upstream',
      AI_PRIMARY_MODEL: MODEL,
      AI_FALLBACK_MODEL: 'none',
      AI_EMBEDDING_MODEL: 'text-embedding-3-small',
    });
    await testApp.app.listen(0, '127.0.0.1');
    const created = await request(testApp.http)
      .post('/admin/api-keys')
      .set('authorization', `Bearer ${testApp.adminKey}`)
      .send({ role: 'user', userId: 'gateway-user', name: 'gateway test' })
      .expect(201);
    userKey = created.body.key;
    client = new OpenAI({ apiKey: userKey, baseURL: `${await testApp.app.getUrl()}/v1`, maxRetries: 0 });
  });

  afterEach(() => fake.reset());

  afterAll(async () => {
    await testApp.close();
    await fake.stop();
  });

  it('answers a non-streaming completion for an unmodified openai client and tracks it for the key owner', async () => {
    fake.script(MODEL, { text: 'Hello from upstream', usage: { prompt_tokens: 12, completion_tokens: 4, total_tokens: 16 } });
    const { data: completion, response } = await client.chat.completions
      .create({ model: MODEL, messages: [{ role: 'user', content: 'Say hello' }], max_tokens: 50 })
      .withResponse();
    expect(completion.choices[0].message.content).toBe('Hello from upstream');
    expect(completion.object).toBe('chat.completion');
    expect(completion.usage).toEqual({ prompt_tokens: 12, completion_tokens: 4, total_tokens: 16 });
    expect(response.headers.get('x-token-ledger-total-tokens')).toBe('16');
    expect(response.headers.get('x-token-ledger-user')).toBe('gateway-user');
    // Integer micro-USD per record: 12 x $0.15/M + 4 x $0.60/M = 4.2 micro-USD, stored as 4.
    expect(response.headers.get('x-token-ledger-cost-usd')).toBe('0.000004');
    expect(Number(response.headers.get('x-token-ledger-remaining-tokens'))).toBe(100_000 - 16);
    expect(fake.requests[0].body?.max_tokens).toBe(50);
    expect(await ledger('gateway-user')).toMatchObject({ totalTokens: 16, requestCount: 1 });
  });

  it('reports remaining budget from its own settle, equal to what the usage endpoint reads right after', async () => {
    const user = 'gateway-headers-user';
    const spent: number[] = [];
    for (const total of [30, 50, 70]) {
      fake.script(MODEL, { text: 'ok', usage: { prompt_tokens: total - 10, completion_tokens: 10, total_tokens: total } });
      const response = await request(testApp.http)
        .post('/v1/chat/completions')
        .set('authorization', `Bearer ${testApp.adminKey}`)
        .send({ model: MODEL, messages: [{ role: 'user', content: 'hi' }], max_tokens: 20, user })
        .expect(200);
      spent.push(total);
      const used = spent.reduce((sum, value) => sum + value, 0);
      const window = await request(testApp.http).get(`/api/v1/tokens/usage/${user}`).set('authorization', `Bearer ${testApp.adminKey}`).expect(200);
      expect(response.headers['x-token-ledger-tracking-enabled']).toBe('true');
      expect(Number(response.headers['x-token-ledger-remaining-tokens'])).toBe(100_000 - used);
      expect(Number(response.headers['x-token-ledger-remaining-tokens'])).toBe(window.body.remaining.rolling24hTokens);
      expect(Number(response.headers['x-token-ledger-remaining-usd'])).toBeCloseTo(window.body.remaining.monthlyCostUsd, 6);
      expect(response.headers['x-token-ledger-reset']).toBe(window.body.reset_at);
      expect(response.headers['x-token-ledger-tier']).toBe('FREE');
    }
  });

  it('streams exactly as OpenAI does, with the final usage chunk, and tracks the exact usage', async () => {
    fake.script(MODEL, { text: 'one two three four', usage: { prompt_tokens: 20, completion_tokens: 8, total_tokens: 28 } });
    const stream = await client.chat.completions.create({
      model: MODEL,
      messages: [{ role: 'user', content: 'Count' }],
      stream: true,
      stream_options: { include_usage: true },
    });
    let text = '';
    let usage: OpenAI.CompletionUsage | undefined | null;
    let finish: string | null = null;
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta?.content ?? '';
      if (chunk.choices[0]?.finish_reason) finish = chunk.choices[0].finish_reason;
      if (chunk.usage) usage = chunk.usage;
    }
    expect(text).toBe('one two three four');
    expect(finish).toBe('stop');
    expect(usage).toEqual({ prompt_tokens: 20, completion_tokens: 8, total_tokens: 28 });
    const stored = await ledger('gateway-user');
    expect(stored!.recentSessions.at(-1)).toMatchObject({ operationType: 'chat_completion', totalTokens: 28, estimated: false });
  });

  it('tracks an aborted stream as a non-zero estimate and leaves no upstream connection open', async () => {
    fake.script(MODEL, { text: Array.from({ length: 60 }, (_, i) => `word${i}`).join(' '), chunkDelayMs: 30 });
    const before = (await ledger('gateway-user'))!.requestCount;
    const abort = new AbortController();
    const stream = await client.chat.completions.create(
      { model: MODEL, messages: [{ role: 'user', content: 'Talk for a while' }], stream: true },
      { signal: abort.signal },
    );
    let received = '';
    try {
      for await (const chunk of stream) {
        received += chunk.choices[0]?.delta?.content ?? '';
        if (received.split(' ').length > 5) abort.abort();
      }
    } catch {
      // The SDK may surface the abort as an error; either way the client is gone.
    }
    expect(received.split(' ').length).toBeGreaterThan(5);
    expect(received.split(' ').length).toBeLessThan(60);
    await waitFor(async () => (await ledger('gateway-user'))!.requestCount === before + 1);
    const session = (await ledger('gateway-user'))!.recentSessions.at(-1);
    expect(session).toMatchObject({ operationType: 'chat_completion', estimated: true, success: false });
    expect(session.completionTokens).toBeGreaterThan(0);
    expect(session.promptTokens).toBeGreaterThan(0);
    await waitFor(async () => fake.activeRequests() === 0);
  });

  it('serves embeddings through the openai client', async () => {
    // The SDK asks for base64 by default and decodes it back to floats.
    const result = await client.embeddings.create({ model: 'text-embedding-3-small', input: ['alpha beta', 'gamma delta'] });
    const floats = await client.embeddings.create({ model: 'text-embedding-3-small', input: ['alpha beta'], encoding_format: 'float' });
    expect(result.data[0].embedding[0]).toBeCloseTo(floats.data[0].embedding[0], 6);
    expect(result.data).toHaveLength(2);
    expect(result.data[1].index).toBe(1);
    expect(result.data[0].embedding.length).toBeGreaterThan(8);
    expect(result.usage.prompt_tokens).toBeGreaterThan(0);
    const stored = await ledger('gateway-user');
    expect(stored!.recentSessions.at(-1)).toMatchObject({ operationType: 'batch_embedding', embeddingTokens: result.usage.prompt_tokens });
  });

  it('lists the configured models', async () => {
    const admin = new OpenAI({ apiKey: testApp.adminKey, baseURL: `${await testApp.app.getUrl()}/v1`, maxRetries: 0 });
    const models = await admin.models.list();
    expect(models.data.map((model) => model.id)).toEqual([MODEL, 'text-embedding-3-small']);
  });

  it('refuses a user key acting for someone else, and requires user for admin keys', async () => {
    await expect(client.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'x' }], user: 'someone-else' })).rejects.toMatchObject({ status: 403 });
    const admin = new OpenAI({ apiKey: testApp.adminKey, baseURL: `${await testApp.app.getUrl()}/v1`, maxRetries: 0 });
    await expect(admin.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'x' }] })).rejects.toMatchObject({ status: 400 });
  });

  it('returns limit refusals as HTTP errors before any stream starts', async () => {
    await request(testApp.http)
      .put('/user/gateway-user/limits')
      .set('authorization', `Bearer ${testApp.adminKey}`)
      .send({ rolling24hTokens: 1 })
      .expect(200);
    await expect(
      client.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'x' }], stream: true }),
    ).rejects.toMatchObject({ status: 429 });
    expect(fake.requests).toHaveLength(0);
  });
});

describe(`${GatewayService.name} with TRACKING_ENABLED=false`, () => {
  it('says tracking is off and reports no remaining budget', async () => {
    const fake = await FakeProviderServer.start();
    const testApp = await createTestApp({
      AI_PROVIDER: 'compatible',
      AI_BASE_URL: fake.baseUrl,
      AI_PRIMARY_MODEL: MODEL,
      AI_FALLBACK_MODEL: 'none',
      TRACKING_ENABLED: 'false',
    });
    try {
      fake.script(MODEL, { text: 'ok', usage: { prompt_tokens: 5, completion_tokens: 2, total_tokens: 7 } });
      const response = await request(testApp.http)
        .post('/v1/chat/completions')
        .set('authorization', `Bearer ${testApp.adminKey}`)
        .send({ model: MODEL, messages: [{ role: 'user', content: 'hi' }], user: 'untracked-user' })
        .expect(200);
      expect(response.headers['x-token-ledger-tracking-enabled']).toBe('false');
      expect(response.headers['x-token-ledger-total-tokens']).toBe('7');
      expect(response.headers['x-token-ledger-remaining-tokens']).toBeUndefined();
      expect(await testApp.db.collection('user_token_usage').findOne({ userId: 'untracked-user' })).toBeNull();
    } finally {
      await testApp.close();
      await fake.stop();
    }
  });
});
