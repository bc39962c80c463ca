import type { Response } from 'supertest';
import { EmbeddingsService } from '../src/embeddings/embeddings.service';
import { FakeProviderServer } from './support/fake-provider.server';
import { createTestApp, TestApp } from './support/test-app';

const MODEL = 'text-embedding-3-small';

/** Everything a response says about the cache: headers, token counts, cost. */
function signals(response: Response) {
  return {
    status: response.status,
    cacheHits: response.headers['x-token-ledger-cache-hits'],
    promptTokens: response.headers['x-token-ledger-prompt-tokens'],
    costUsd: response.headers['x-token-ledger-cost-usd'],
    usage: response.body.usage,
  };
}

describe(`${EmbeddingsService.name}: the cache is no oracle`, () => {
  let fake: FakeProviderServer;
  let testApp: TestApp;
  let aliceKey: string;
  let bobKey: string;

  beforeAll(async () => {
    fake = await FakeProviderServer.start();
    testApp = await createTestApp({ AI_PROVIDER: 'compatible', AI_BASE_URL: fake.baseUrl, AI_API_KEY: 'sk-cache-test', AI_EMBEDDING_MODEL: MODEL, RATE_LIMIT_PER_MINUTE: 100_000 });
    const created = async (userId: string) => (await testApp.api().post('/admin/api-keys').send({ role: 'user', userId }).expect(201)).body.key as string;
    aliceKey = await created('cache-alice');
    bobKey = await created('cache-bob');
  });

  afterAll(async () => {
    await testApp.close();
    await fake.stop();
  });

  const embed = (key: string, input: string | string[]) => testApp.api(key).post('/v1/embeddings').send({ model: MODEL, input });

  it('answers /v1/embeddings alike whether or not another user embedded the text, and hits on the caller’s own texts', async () => {
    // Same length and shape, so a cold embedding of either costs the same tokens.
    const bobsText = 'Salary review for employee 4711: raise approved';
    const freshText = 'Salary review for employee 4712: raise approved';
    await embed(bobKey, bobsText).expect(200);

    const providerCallsBefore = fake.requests.length;
    const probe = await embed(aliceKey, bobsText).expect(200);
    const control = await embed(aliceKey, freshText).expect(200);
    expect(signals(probe)).toEqual(signals(control));
    expect(signals(probe)).toMatchObject({ cacheHits: '0' });
    expect(Number(probe.headers['x-token-ledger-prompt-tokens'])).toBeGreaterThan(0);
    expect(fake.requests.length - providerCallsBefore).toBe(2);

    const own = await embed(aliceKey, bobsText).expect(200);
    expect(own.headers['x-token-ledger-cache-hits']).toBe('1');
    expect(own.body.usage).toEqual({ prompt_tokens: 0, total_tokens: 0 });
    expect(own.body.data[0].embedding).toEqual(probe.body.data[0].embedding);
  });

  it('answers /embeddings with the same cache_hits and tokens whether or not another user stored the text', async () => {
    const contents = ['Quarterly numbers, draft 1', 'Quarterly numbers, draft 2'];
    await testApp.api(bobKey).post('/embeddings').send({ resourceId: 'bob-doc', contents: [contents[0]] }).expect(200);
    const probe = await testApp.api(aliceKey).post('/embeddings').send({ resourceId: 'probe', contents: [contents[0]] }).expect(200);
    const control = await testApp.api(aliceKey).post('/embeddings').send({ resourceId: 'control', contents: [contents[1]] }).expect(200);
    const figures = (body: Record<string, unknown>) => ({ cache_hits: body.cache_hits, embedding_tokens: body.embedding_tokens, token_usage: body.token_usage });
    expect(figures(probe.body)).toEqual(figures(control.body));
    expect(probe.body.cache_hits).toBe(0);
    expect(probe.body.embedding_tokens).toBeGreaterThan(0);
  });
});
