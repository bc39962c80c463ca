import request from 'supertest';
import { EmbeddingsService } from '../src/embeddings/embeddings.service';
import { FakeProviderServer } from './support/fake-provider.server';
import { createTestApp, TestApp } from './support/test-app';

const EMBEDDING_MODEL = 'text-embedding-3-small';

describe(EmbeddingsService.name, () => {
  let fake: FakeProviderServer;
  let testApp: TestApp;
  let auth: { authorization: string };
  const embedRequests = () => fake.requests.filter((received) => received.path.endsWith('/embeddings'));

  beforeAll(async () => {
    fake = await FakeProviderServer.start();
    testApp = await createTestApp({
      AI_PROVIDER: 'compatible',
      AI_BASE_URL: fake.baseUrl,
      AI_API_KEY: 'sk-embeddings-test',
      AI_EMBEDDING_MODEL: EMBEDDING_MODEL,
    });
    auth = { authorization: `Bearer ${testApp.adminKey}` };
  });

  afterEach(() => fake.reset());

  afterAll(async () => {
    await testApp.close();
    await fake.stop();
  });

  const ledger = (userId: string) => testApp.db.collection('user_token_usage').findOne({ userId });

  it('embeds one text as an embedding operation and answers in the seed shape', async () => {
    const response = await request(testApp.http)
      .post('/embeddings')
      .set(auth)
      .send({ resourceId: 'pdf_123', content: 'The mitochondria is the powerhouse of the cell.', userId: 'embed-user' })
      .expect(200);
    expect(response.body).toMatchObject({
      status: 'success',
      resource_id: 'pdf_123',
      embedding_id: 'pdf_123',
      message: 'Resource successfully embedded',
      cache_hits: 0,
      texts: 1,
    });
    expect(response.body.embedding_tokens).toBeGreaterThan(0);
    expect(response.body.token_usage).toMatchObject({ prompt_tokens: 0, completion_tokens: 0, embedding_tokens: response.body.embedding_tokens });
    const stored = await ledger('embed-user');
    expect(stored).toMatchObject({ totalEmbeddingTokens: response.body.embedding_tokens, totalPromptTokens: 0, requestCount: 1 });
    expect(stored!.recentSessions[0].operationType).toBe('embedding');
  });

  it('tracks many texts as one batch_embedding and serves repeats from the cache at zero tokens', async () => {
    const contents = ['Chapter one text', 'Chapter two text', 'Chapter three text'];
    const first = await request(testApp.http).post('/embeddings').set(auth).send({ resourceId: 'book', contents, userId: 'batch-user' }).expect(200);
    expect(first.body).toMatchObject({ cache_hits: 0, texts: 3 });
    expect(embedRequests()).toHaveLength(1);
    expect(embedRequests()[0].body?.input).toEqual(contents);
    const afterFirst = await ledger('batch-user');
    expect(afterFirst).toMatchObject({ requestCount: 1, totalEmbeddingTokens: first.body.embedding_tokens });
    expect(afterFirst!.recentSessions[0].operationType).toBe('batch_embedding');

    const repeat = await request(testApp.http).post('/embeddings').set(auth).send({ resourceId: 'book', contents, userId: 'batch-user' }).expect(200);
    expect(repeat.body).toMatchObject({ cache_hits: 3, embedding_tokens: 0 });
    expect(repeat.body.token_usage.total_tokens).toBe(0);
    expect(embedRequests()).toHaveLength(1);
    expect(await ledger('batch-user')).toMatchObject({ requestCount: 1, totalEmbeddingTokens: first.body.embedding_tokens });

    const mixed = await request(testApp.http)
      .post('/embeddings')
      .set(auth)
      .send({ resourceId: 'book', contents: [...contents.slice(0, 2), 'A new epilogue'], userId: 'batch-user' })
      .expect(200);
    expect(mixed.body.cache_hits).toBe(2);
    expect(embedRequests()).toHaveLength(2);
    expect(embedRequests()[1].body?.input).toEqual(['A new epilogue']);
    expect(mixed.body.embedding_tokens).toBeGreaterThan(0);

    const stats = await request(testApp.http).get('/embeddings/cache/stats').set(auth).expect(200);
    expect(stats.body).toMatchObject({ hits: 5, misses: 5 });
    expect(stats.body.hitRate).toBeCloseTo(0.5);
  });

  it('embeds without tracking when no userId is given', async () => {
    const response = await request(testApp.http).post('/embeddings').set(auth).send({ resourceId: 'anon', content: 'Anonymous text' }).expect(200);
    expect(response.body.embedding_tokens).toBeGreaterThan(0);
    expect(await testApp.db.collection('user_token_usage').countDocuments({})).toBe(2);
  });

  it.each([
    [{ content: 'x' }, 'resourceId'],
    [{ resourceId: 'r' }, 'content'],
    [{ resourceId: 'r', content: 'x', contents: ['y'] }, 'content or contents'],
    [{ resourceId: 'r', contents: [] }, 'contents'],
    [{ resourceId: 'r', contents: ['ok', 5] }, 'contents'],
    [{ resourceId: '../etc', content: 'x' }, 'resourceId'],
    [{ resourceId: 'r', content: 'x', model: 'bad model' }, 'model'],
  ])('rejects %j with 400 naming %s', async (body, field) => {
    const response = await request(testApp.http).post('/embeddings').set(auth).send(body).expect(400);
    expect(response.body.message).toContain(field);
    expect(embedRequests()).toHaveLength(0);
  });
});
