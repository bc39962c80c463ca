import request from 'supertest';
import { Binary } from 'mongodb';
import { TokenizerService } from '../src/ai/tokenizer.service';
import { Clock } from '../src/common/clock';
import { chunkByTokens } from '../src/embeddings/text-chunker';
import { NO_CONTEXT_ANSWER, RAG_INSTRUCTIONS } from '../src/search/rag-prompt';
import { SearchService } from '../src/search/search.service';
import { FakeProviderServer } from './support/fake-provider.server';
import { createTestApp, TestApp } from './support/test-app';

const MODEL = 'gpt-4o-mini';
const EMBEDDING_MODEL = 'text-embedding-3-small';
const CHUNK_TOKENS = 40;
const CHUNK_OVERLAP = 8;

/** Texts differ per owner, so one owner's embeddings are never cache hits for another. */
const corpus = (owner: string) => ({
  bio: `The mitochondria is the powerhouse of the cell. Mitochondria produce energy for the cell through respiration. (${owner})`,
  astro: `Jupiter is the largest planet in the solar system. Saturn has beautiful rings made of ice. (${owner})`,
  cook: `To bake bread, mix flour, water, yeast and salt, then knead the dough and let it rise. (${owner})`,
});

type SseEvent = Record<string, any> | '[DONE]';

/** supertest parser that keeps a server-sent event stream as text. */
const sseText = (res: request.Response, callback: (error: Error | null, body: unknown) => void) => {
  const stream = res as unknown as NodeJS.ReadableStream;
  let body = '';
  stream.setEncoding('utf8');
  stream.on('data', (chunk: string) => (body += chunk));
  stream.on('end', () => callback(null, body));
};

const sseEvents = (body: string): SseEvent[] =>
  body
    .split('\n\n')
    .filter((block) => block.startsWith('data: '))
    .map((block) => block.slice('data: '.length))
    .map((data) => (data === '[DONE]' ? '[DONE]' : (JSON.parse(data) as Record<string, any>)));

describe(SearchService.name, () => {
  let fake: FakeProviderServer;
  let testApp: TestApp;
  let aliceKey: string;

  const api = (key?: string) => testApp.api(key);
  const ledger = (userId: string) => testApp.db.collection('user_token_usage').findOne({ userId });
  const operationsOf = async (userId: string) => {
    const stored = await ledger(userId);
    return Object.values(stored!.dailyUsage as Record<string, { operations: Record<string, number> }>).reduce<Record<string, number>>((sum, day) => {
      for (const [operation, count] of Object.entries(day.operations)) sum[operation] = (sum[operation] ?? 0) + count;
      return sum;
    }, {});
  };
  const embedRequests = () => fake.requests.filter((received) => received.path.endsWith('/embeddings'));
  const chatRequests = () => fake.requests.filter((received) => received.path.endsWith('/chat/completions'));
  const embed = (userId: string | undefined, resourceId: string, body: { content?: string; contents?: string[] }) =>
    api().post('/embeddings').send({ resourceId, ...(userId ? { userId } : {}), ...body });
  const embedCorpus = async (owner: string, only?: Array<keyof ReturnType<typeof corpus>>) => {
    for (const [resourceId, content] of Object.entries(corpus(owner))) {
      if (!only || only.includes(resourceId as keyof ReturnType<typeof corpus>)) await embed(owner, resourceId, { content }).expect(200);
    }
  };
  const search = (body: Record<string, unknown>, key?: string) => api(key).post('/api/v1/search/semantic').send(body);
  const storedChunks = (userId: string, resourceId?: string) =>
    testApp.db
      .collection('resource_chunks')
      .find({ userId, ...(resourceId ? { resourceId } : {}) })
      .sort({ resourceId: 1, chunkIndex: 1 })
      .toArray();
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
      AI_API_KEY: 'sk-search-test',
      AI_PRIMARY_MODEL: MODEL,
      AI_FALLBACK_MODEL: 'none',
      AI_EMBEDDING_MODEL: EMBEDDING_MODEL,
      EMBED_CHUNK_TOKENS: CHUNK_TOKENS,
      EMBED_CHUNK_OVERLAP: CHUNK_OVERLAP,
    });
    await testApp.app.listen(0, '127.0.0.1');
    aliceKey = (await api().post('/admin/api-keys').send({ role: 'user', userId: 'alice' }).expect(201)).body.key;
    await embedCorpus('alice');
  });

  afterEach(() => fake.reset());

  afterAll(async () => {
    await testApp.close();
    await fake.stop();
  });

  describe('resources', () => {
    it("stores each text as the owner's chunks with their vectors, adding fields to the seed response", async () => {
      const response = await embed('store-user', 'pdf_123', { content: corpus('store-user').bio }).expect(200);
      expect(response.body).toMatchObject({
        status: 'success',
        resource_id: 'pdf_123',
        embedding_id: 'pdf_123',
        message: 'Resource successfully embedded',
        texts: 1,
        chunks: 1,
        stored_chunks: 1,
        replaced_chunks: 0,
        cache_hits: 0,
      });
      const [chunk] = await storedChunks('store-user');
      expect(chunk).toMatchObject({ userId: 'store-user', resourceId: 'pdf_123', model: EMBEDDING_MODEL, chunkIndex: 0, text: corpus('store-user').bio, dimensions: 1536 });
      expect((chunk.embedding as Binary).toFloat32Array()).toHaveLength(1536);
      expect((await ledger('store-user'))!.recentSessions.at(-1)).toMatchObject({ operationType: 'embedding', embeddingTokens: response.body.embedding_tokens });
    });

    it('chunks long content by tokens with overlap and embeds the chunks as one batch_embedding', async () => {
      const content = Array.from({ length: 30 }, (_, i) => `Sentence ${i} talks about topic ${i % 5}.`).join(' ');
      const tokenizer = testApp.app.get(TokenizerService);
      const expected = chunkByTokens(content, tokenizer.tokenOffsets(content, EMBEDDING_MODEL), { size: CHUNK_TOKENS, overlap: CHUNK_OVERLAP });
      expect(expected.length).toBeGreaterThan(3);

      const response = await embed('chunk-user', 'long_doc', { content }).expect(200);
      expect(response.body).toMatchObject({ texts: 1, chunks: expected.length, stored_chunks: expected.length });
      expect(embedRequests()).toHaveLength(1);
      expect(embedRequests()[0].body?.input).toEqual(expected.map((chunk) => chunk.text));
      const stored = await storedChunks('chunk-user');
      expect(stored.map((chunk) => [chunk.chunkIndex, chunk.text, chunk.tokens])).toEqual(expected.map((chunk, index) => [index, chunk.text, chunk.tokens]));
      const session = (await ledger('chunk-user'))!.recentSessions.at(-1);
      expect(session).toMatchObject({ operationType: 'batch_embedding', embeddingTokens: response.body.embedding_tokens });
    });

    it('embeds without storing when no userId is given, and says so', async () => {
      const response = await embed(undefined, 'anonymous', { content: 'Text nobody owns' }).expect(200);
      expect(response.body).toMatchObject({ stored_chunks: 0, chunks: 1, message: expect.stringContaining('not stored') });
      expect(await testApp.db.collection('resource_chunks').countDocuments({ resourceId: 'anonymous' })).toBe(0);
    });

    it('replaces the chunks of a re-embedded resource and invalidates cached results', async () => {
      await embedCorpus('replace-user');
      const query = { query: 'largest planet Jupiter', userId: 'replace-user', limit: 1 };
      const before = await search(query).expect(200);
      expect(before.body.results[0]).toMatchObject({ resource_id: 'astro', text: corpus('replace-user').astro });
      expect((await search(query).expect(200)).body.cache.results).toBe('hit');

      const contents = ['Jupiter was demoted in this edition: the largest planet is now a footnote.', 'Neptune is the windiest planet.'];
      const again = await embed('replace-user', 'astro', { contents }).expect(200);
      expect(again.body).toMatchObject({ texts: 2, chunks: 2, stored_chunks: 2, replaced_chunks: 1 });
      const stored = await storedChunks('replace-user', 'astro');
      expect(stored.map((chunk) => chunk.text)).toEqual(contents);
      expect(new Set(stored.map((chunk) => chunk.generation)).size).toBe(1);

      const after = await search(query).expect(200);
      expect(after.body.cache.results).toBe('miss');
      expect(after.body.results[0]).toMatchObject({ resource_id: 'astro', chunk_index: 0, text: contents[0] });
    });

    it('deletes a resource for its owner, 404 when there is none', async () => {
      await embedCorpus('delete-user');
      const removed = await api().delete('/embeddings/cook').query({ userId: 'delete-user' }).expect(200);
      expect(removed.body).toEqual({ status: 'deleted', resource_id: 'cook', deleted_chunks: 1 });
      expect(await storedChunks('delete-user', 'cook')).toHaveLength(0);
      const results = await search({ query: 'bake bread dough yeast', userId: 'delete-user', limit: 10 }).expect(200);
      expect(results.body.results.map((result: { resource_id: string }) => result.resource_id)).not.toContain('cook');

      const missing = await api().delete('/embeddings/cook').query({ userId: 'delete-user' }).expect(404);
      expect(missing.body.message).toBe('user "delete-user" has no stored resource "cook"');
      // Another user's resource of the same name is untouched.
      expect(await storedChunks('alice', 'cook')).toHaveLength(1);
    });

    it('guards deletion by owner and validates its input', async () => {
      await api(aliceKey).delete('/embeddings/cook').query({ userId: 'delete-user' }).expect(403);
      expect((await api().delete('/embeddings/cook').expect(400)).body.message).toContain('userId');
      expect((await api().delete('/embeddings/bad%20id').query({ userId: 'alice' }).expect(400)).body.message).toContain('resourceId');
      expect(await storedChunks('alice', 'cook')).toHaveLength(1);
    });
  });

  describe('semantic search', () => {
    it.each([
      ['How do mitochondria produce energy for the cell?', 'bio'],
      ['Which planet has rings of ice?', 'astro'],
      ['knead the bread dough with yeast', 'cook'],
    ])('ranks a small corpus by similarity: %s -> %s', async (query, best) => {
      const response = await search({ query, userId: 'alice', limit: 3 }).expect(200);
      expect(response.body).toMatchObject({ query, model: EMBEDDING_MODEL });
      const results = response.body.results as Array<{ resource_id: string; chunk_index: number; score: number; text: string }>;
      expect(results).toHaveLength(3);
      expect(results[0]).toMatchObject({ resource_id: best, chunk_index: 0, text: corpus('alice')[best as 'bio'] });
      expect(results[0].score).toBeGreaterThan(0.2);
      expect(results.map((result) => result.score)).toEqual([...results.map((result) => result.score)].sort((a, b) => b - a));
      expect(results.map((result) => result.resource_id).sort()).toEqual(['astro', 'bio', 'cook']);
    });

    it('tracks the query embedding as an embedding operation, limited to resourceIds when given', async () => {
      await embedCorpus('track-user');
      const before = await operationsOf('track-user');
      const response = await search({ query: 'solar system planets', userId: 'track-user', resourceIds: ['cook', 'bio'] }).expect(200);
      expect(response.body.results.map((result: { resource_id: string }) => result.resource_id).sort()).toEqual(['bio', 'cook']);
      expect(response.body.cache).toEqual({ query_embedding: 'miss', results: 'miss' });
      expect(response.body.token_usage).toMatchObject({ prompt_tokens: 0, completion_tokens: 0, embedding_tokens: expect.any(Number), estimated: false });
      expect(response.body.token_usage.embedding_tokens).toBeGreaterThan(0);
      expect(await operationsOf('track-user')).toEqual({ ...before, embedding: before.embedding + 1 });
      expect((await ledger('track-user'))!.recentSessions.at(-1)).toMatchObject({ operationType: 'embedding', embeddingTokens: response.body.token_usage.embedding_tokens });
      // The normalised query is what was embedded.
      expect(embedRequests().at(-1)!.body?.input).toEqual(['solar system planets']);
    });

    it('serves repeats from the session, persistent and result caches at zero tokens, and reports hit rates', async () => {
      const statsBefore = (await api().get('/api/v1/search/cache/stats').expect(200)).body;
      const ledgerBefore = (await ledger('alice'))!.requestCount;
      const query = 'Where does the CELL get its energy?';

      const first = await search({ query, userId: 'alice', sessionId: 'tab-1', limit: 2 }).expect(200);
      expect(first.body.cache).toEqual({ query_embedding: 'miss', results: 'miss' });
      expect(first.body.token_usage.embedding_tokens).toBeGreaterThan(0);

      const session = await search({ query: '  where does the cell   get its ENERGY? ', userId: 'alice', sessionId: 'tab-1', limit: 3 }).expect(200);
      expect(session.body.cache).toEqual({ query_embedding: 'session', results: 'miss' });
      expect(session.body.token_usage).toMatchObject({ total_tokens: 0, embedding_tokens: 0, cost_estimate_usd: 0 });

      const persistent = await search({ query, userId: 'alice', sessionId: 'tab-2', limit: 1 }).expect(200);
      expect(persistent.body.cache).toEqual({ query_embedding: 'persistent', results: 'miss' });
      expect(persistent.body.token_usage.total_tokens).toBe(0);

      const cached = await search({ query: query.toLowerCase(), userId: 'alice', sessionId: 'tab-3', limit: 2 }).expect(200);
      expect(cached.body.cache).toEqual({ query_embedding: 'skipped', results: 'hit' });
      expect(cached.body.results).toEqual(first.body.results);
      expect(cached.body.token_usage.total_tokens).toBe(0);

      expect(embedRequests()).toHaveLength(1);
      expect((await ledger('alice'))!.requestCount).toBe(ledgerBefore + 1);

      const stats = (await api().get('/api/v1/search/cache/stats').expect(200)).body;
      expect(stats.searches - statsBefore.searches).toBe(4);
      expect(stats.tokenFreeSearches - statsBefore.tokenFreeSearches).toBe(3);
      expect(stats.session.hits - statsBefore.session.hits).toBe(1);
      expect(stats.session.lookups - statsBefore.session.lookups).toBe(3);
      expect(stats.persistent.hits - statsBefore.persistent.hits).toBe(1);
      expect(stats.persistent.lookups - statsBefore.persistent.lookups).toBe(2);
      expect(stats.results.hits - statsBefore.results.hits).toBe(1);
      expect(stats.results.lookups - statsBefore.results.lookups).toBe(4);
      for (const layer of [stats.session, stats.persistent, stats.results]) expect(layer.hitRate).toBeCloseTo(layer.hits / layer.lookups, 10);
      expect(stats.hitRate).toBeCloseTo(stats.tokenFreeSearches / stats.searches, 10);
      // tab-1 and tab-2 remembered the vector; the result hit in tab-3 needed none.
      expect(stats.session.entries).toBeGreaterThanOrEqual(2);
      expect(stats.persistent.entries).toBe(await testApp.db.collection('embedding_cache').countDocuments());
      expect(stats.vectorIndex).toMatchObject({ mode: 'inprocess', matrices: expect.any(Number), maxBytes: 512 * 2 ** 20 });
      expect(stats.vectorIndex.bytes).toBeGreaterThan(0);
      await api(aliceKey).get('/api/v1/search/cache/stats').expect(403);

      // The same figures reach Prometheus.
      const scrape = await api().get('/metrics/prometheus').expect(200);
      const gauge = (name: string, layer: string) => Number(new RegExp(`^token_ledger_${name}\\{layer="${layer}"\\} (\\S+)$`, 'm').exec(scrape.text)?.[1]);
      expect(gauge('search_cache_hit_ratio', 'overall')).toBeCloseTo(stats.hitRate, 6);
      expect(gauge('search_cache_hit_ratio', 'session')).toBeCloseTo(stats.session.hitRate, 6);
      expect(gauge('search_cache_entries', 'session')).toBe(stats.session.entries);
    });

    it('expires session entries after SEARCH_SESSION_CACHE_TTL_MS, falling back to the persistent cache', async () => {
      const body = { query: 'rings of Saturn made of ice', userId: 'alice', sessionId: 'tab-ttl' };
      expect((await search({ ...body, limit: 1 }).expect(200)).body.cache.query_embedding).toBe('miss');
      expect((await search({ ...body, limit: 2 }).expect(200)).body.cache.query_embedding).toBe('session');
      testApp.app.get(Clock).advance(testApp.config.SEARCH_SESSION_CACHE_TTL_MS + 1);
      expect((await search({ ...body, limit: 3 }).expect(200)).body.cache.query_embedding).toBe('persistent');
      expect((await search({ ...body, limit: 4 }).expect(200)).body.cache.query_embedding).toBe('session');
    });

    it('answers a user with nothing stored without embedding the query', async () => {
      const response = await search({ query: 'anything at all', userId: 'nobody' }).expect(200);
      expect(response.body).toMatchObject({ results: [], cache: { query_embedding: 'skipped' }, token_usage: { total_tokens: 0 } });
      expect(embedRequests()).toHaveLength(0);
      expect(await ledger('nobody')).toBeNull();
    });

    it("never returns another user's chunks, not even by naming their resources", async () => {
      await embed('bob', 'bob_secret', { content: 'Mitochondria energy cell: the secret notes of bob.' }).expect(200);
      await embed('bob', 'bio', { content: 'Bob keeps his own biology notes about mitochondria.' }).expect(200);
      const mine = await search({ query: 'mitochondria energy cell secret notes', userId: 'alice', limit: 50 }).expect(200);
      expect(mine.body.results.map((result: { text: string }) => result.text)).not.toContainEqual(expect.stringContaining('bob'));
      expect(mine.body.results).toHaveLength(3);
      const named = await search({ query: 'secret notes', userId: 'alice', resourceIds: ['bob_secret'] }).expect(200);
      expect(named.body.results).toEqual([]);
      const same = await search({ query: 'mitochondria', userId: 'alice', resourceIds: ['bio'] }).expect(200);
      expect(same.body.results).toEqual([expect.objectContaining({ resource_id: 'bio', text: corpus('alice').bio })]);
      const theirs = await search({ query: 'mitochondria', userId: 'bob', resourceIds: ['bio'] }).expect(200);
      expect(theirs.body.results).toEqual([expect.objectContaining({ resource_id: 'bio', text: 'Bob keeps his own biology notes about mitochondria.' })]);
      // A user key searches only as its own user.
      await search({ query: 'secret notes', userId: 'bob' }, aliceKey).expect(403);
      const filled = await search({ query: 'secret notes' }, aliceKey).expect(200);
      expect(filled.body.results.map((result: { resource_id: string }) => result.resource_id)).not.toContain('bob_secret');
    });

    it.each([
      [{ userId: 'alice' }, 'query'],
      [{ query: '', userId: 'alice' }, 'query'],
      [{ query: 'x' }, 'userId'],
      [{ query: 'x', userId: 'bad user' }, 'userId'],
      [{ query: 'x', userId: 'alice', limit: 0 }, 'limit'],
      [{ query: 'x', userId: 'alice', limit: 51 }, 'limit'],
      [{ query: 'x', userId: 'alice', limit: 2.5 }, 'limit'],
      [{ query: 'x', userId: 'alice', limit: '5' }, 'limit'],
      [{ query: 'x', userId: 'alice', resourceIds: 'bio' }, 'resourceIds'],
      [{ query: 'x', userId: 'alice', resourceIds: [] }, 'resourceIds'],
      [{ query: 'x', userId: 'alice', resourceIds: ['../etc'] }, 'resourceIds'],
      [{ query: 'x', userId: 'alice', sessionId: 'has space' }, 'sessionId'],
      [{ query: 'x', userId: 'alice', extra: 1 }, 'extra'],
    ])('rejects %j with 400 naming %s', async (body, field) => {
      const response = await search(body).expect(400);
      expect(response.body.message).toContain(field);
      expect(fake.requests).toHaveLength(0);
    });
  });

  describe('RAG answers', () => {
    beforeAll(() => embedCorpus('rag-user'));

    const usage = (prompt: number, completion: number) => ({ prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion });

    it('answers from the retrieved passages citing resource ids, tracking the embedding and the answer', async () => {
      const before = await operationsOf('rag-user');
      fake.script(MODEL, { text: 'Mitochondria produce the energy [bio].', usage: usage(180, 9) });
      const response = await api().post('/api/v1/search/answer').send({ query: 'How do mitochondria produce energy?', userId: 'rag-user', limit: 2 }).expect(200);

      expect(response.body).toMatchObject({ answer: 'Mitochondria produce the energy [bio].', model: MODEL, cache: { query_embedding: 'miss', results: 'miss' } });
      expect(response.body.sources[0]).toMatchObject({ resource_id: 'bio', chunk_index: 0 });
      expect(response.body.sources.every((source: { score: number }) => source.score >= 0.15)).toBe(true);
      const embeddingTokens = response.body.token_usage.embedding_tokens;
      expect(embeddingTokens).toBeGreaterThan(0);
      expect(response.body.token_usage).toMatchObject({ prompt_tokens: 180, completion_tokens: 9, total_tokens: 189 + embeddingTokens, estimated: false });
      expect(response.body.token_usage.cost_estimate_usd).toBeGreaterThan(0);

      const [system, user] = chatRequests()[0].body!.messages as Array<{ role: string; content: string }>;
      expect(system).toEqual({ role: 'system', content: RAG_INSTRUCTIONS });
      expect(user.content).toContain(`[bio] (chunk 0)\n${corpus('rag-user').bio}`);
      expect(user.content).toMatch(/Question: How do mitochondria produce energy\?$/);

      const sessions = (await ledger('rag-user'))!.recentSessions.slice(-2);
      expect(sessions.map((session: { operationType: string }) => session.operationType)).toEqual(['embedding', 'rag_answer']);
      expect(sessions[0].embeddingTokens + sessions[1].totalTokens).toBe(response.body.token_usage.total_tokens);
      expect(await operationsOf('rag-user')).toEqual({ ...before, embedding: before.embedding + 1, rag_answer: 1 });
    });

    it('answers without calling a model when no passage is relevant', async () => {
      const response = await api().post('/api/v1/search/answer').send({ query: 'quantum chromodynamics gluon confinement', userId: 'rag-user' }).expect(200);
      expect(response.body).toMatchObject({ answer: NO_CONTEXT_ANSWER, sources: [], model: null, provider: null });
      expect(response.body.token_usage.total_tokens).toBe(response.body.token_usage.embedding_tokens);
      expect(chatRequests()).toHaveLength(0);
    });

    it('streams deltas, a done event with sources and exact usage, then [DONE], tracked as rag_streaming', async () => {
      const before = await operationsOf('rag-user');
      fake.script(MODEL, { text: 'Saturn has rings of ice [astro].', usage: usage(150, 8) });
      const response = await api()
        .post('/api/v1/search/answer')
        .send({ query: 'Which planet has rings?', userId: 'rag-user', stream: true })
        .buffer(true)
        .parse(sseText)
        .expect(200);
      expect(response.headers['content-type']).toMatch(/^text\/event-stream/);
      const events = sseEvents(response.body as string);
      expect(events.at(-1)).toBe('[DONE]');
      const deltas = events.filter((event): event is Record<string, any> => event !== '[DONE]' && event.type === 'delta');
      expect(deltas.map((event) => event.text).join('')).toBe('Saturn has rings of ice [astro].');
      const done = events.at(-2) as Record<string, any>;
      expect(done).toMatchObject({ type: 'done', model: MODEL, sources: [expect.objectContaining({ resource_id: 'astro' })] });
      expect(done.token_usage).toMatchObject({ prompt_tokens: 150, completion_tokens: 8, estimated: false });
      expect(done.token_usage.total_tokens).toBe(158 + done.token_usage.embedding_tokens);

      const session = (await ledger('rag-user'))!.recentSessions.at(-1);
      expect(session).toMatchObject({ operationType: 'rag_streaming', totalTokens: 158, estimated: false, success: true });
      expect(await operationsOf('rag-user')).toEqual({ ...before, embedding: before.embedding + 1, rag_streaming: (before.rag_streaming ?? 0) + 1 });
    });

    it('tracks a stream the client abandons as an estimate, aborting the upstream call', async () => {
      fake.script(MODEL, { text: Array.from({ length: 80 }, (_, i) => `word${i}`).join(' '), chunkDelayMs: 25 });
      const before = (await ledger('rag-user'))!.requestCount;
      const abort = new AbortController();
      const response = await fetch(`${await testApp.app.getUrl()}/api/v1/search/answer`, {
        method: 'POST',
        headers: { authorization: `Bearer ${testApp.adminKey}`, 'content-type': 'application/json' },
        body: JSON.stringify({ query: 'Tell me about the bread dough and yeast', userId: 'rag-user', stream: true }),
        signal: abort.signal,
      });
      let received = '';
      try {
        for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
          received += Buffer.from(chunk).toString();
          if ((received.match(/"type":"delta"/g) ?? []).length >= 5) abort.abort();
        }
      } catch {
        // The abort surfaces as an error: the client is gone.
      }
      await waitFor(async () => (await ledger('rag-user'))!.requestCount === before + 2);
      const session = (await ledger('rag-user'))!.recentSessions.at(-1);
      expect(session).toMatchObject({ operationType: 'rag_streaming', estimated: true, success: false });
      expect(session.completionTokens).toBeGreaterThan(0);
      expect(session.completionTokens).toBeLessThan(80);
      await waitFor(async () => fake.activeRequests() === 0);
    });

    it('ends a stream the provider cuts with an error event carrying an estimated usage', async () => {
      fake.script(MODEL, { text: 'Jupiter is the largest planet of all the planets we know', resetMidStream: true, resetAfterChunks: 4 });
      const response = await api()
        .post('/api/v1/search/answer')
        .send({ query: 'What is the largest planet?', userId: 'rag-user', stream: true })
        .buffer(true)
        .parse(sseText)
        .expect(200);
      const events = sseEvents(response.body as string);
      const deltas = events.filter((event): event is Record<string, any> => event !== '[DONE]' && event.type === 'delta');
      expect(deltas.map((event) => event.text).join('')).toBe('Jupiter is the largest');
      const error = events.at(-2) as Record<string, any>;
      expect(error).toMatchObject({ type: 'error', message: expect.stringContaining('AI provider failed') });
      expect(error.token_usage).toMatchObject({ estimated: true });
      expect(error.token_usage.completion_tokens).toBeGreaterThan(0);
      const session = (await ledger('rag-user'))!.recentSessions.at(-1);
      expect(session).toMatchObject({ operationType: 'rag_streaming', estimated: true, success: false });
      expect(session.completionTokens).toBe(error.token_usage.completion_tokens);
      expect(session.promptTokens).toBe(error.token_usage.prompt_tokens);
    });

    it('rejects a bad stream flag with 400 naming it', async () => {
      const response = await api().post('/api/v1/search/answer').send({ query: 'x', userId: 'rag-user', stream: 'yes' }).expect(400);
      expect(response.body.message).toContain('stream');
    });
  });

  describe('orcha chat with use_rag', () => {
    it('grounds the answer on the retrieved passages; tokens_added covers the embedding and the answer', async () => {
      await embedCorpus('orcha-user', ['bio', 'cook']);
      fake.script(MODEL, { text: 'From your notes: mitochondria [bio].', usage: { prompt_tokens: 140, completion_tokens: 11, total_tokens: 151 } });
      const response = await request(testApp.http)
        .post('/api/v1/orcha/chat')
        .set('authorization', `Bearer ${testApp.adminKey}`)
        .send({ user_id: 'orcha-user', message: 'How do mitochondria make energy for the cell?', use_rag: true })
        .expect(200);
      const usage = response.body.token_usage;
      expect(response.body).toMatchObject({ status: 'ok', message: 'From your notes: mitochondria [bio].' });
      expect(response.body.sources[0]).toMatchObject({ resource_id: 'bio', chunk_index: 0 });
      expect(usage.embedding_tokens).toBeGreaterThan(0);
      expect(usage).toMatchObject({ prompt_tokens: 140, completion_tokens: 11, tracking_enabled: true });
      expect(usage.tokens_added).toBe(151 + usage.embedding_tokens);
      expect(usage.total_tokens).toBe(usage.tokens_added);

      const messages = chatRequests()[0].body!.messages as Array<{ role: string; content: string }>;
      expect(messages.map((message) => message.role)).toEqual(['system', 'system', 'user']);
      expect(messages[1].content).toContain(`[bio] (chunk 0)\n${corpus('orcha-user').bio}`);
      const sessions = (await ledger('orcha-user'))!.recentSessions.slice(-2);
      expect(sessions.map((session: { operationType: string }) => session.operationType)).toEqual(['embedding', 'orcha_chat']);
      expect(sessions[0].totalTokens + sessions[1].totalTokens).toBe(usage.tokens_added);
    });

    it('still answers, told that nothing matched, when the user has no relevant resources', async () => {
      fake.script(MODEL, { text: 'Hello!', usage: { prompt_tokens: 60, completion_tokens: 2, total_tokens: 62 } });
      const response = await request(testApp.http)
        .post('/api/v1/orcha/chat')
        .set('authorization', `Bearer ${testApp.adminKey}`)
        .send({ user_id: 'no-resources-user', message: 'Hello there', use_rag: true })
        .expect(200);
      expect(response.body).toMatchObject({ message: 'Hello!', sources: [] });
      // Nothing stored: the message was not even embedded.
      expect(response.body.token_usage).toMatchObject({ tokens_added: 62, embedding_tokens: 0 });
      expect(embedRequests()).toHaveLength(0);
      const messages = chatRequests()[0].body!.messages as Array<{ role: string; content: string }>;
      expect(messages[1].content).toContain('did not cover it');
    });
  });
});

describe('VECTOR_SEARCH=atlas', () => {
  let fake: FakeProviderServer;
  let testApp: TestApp;

  beforeAll(async () => {
    fake = await FakeProviderServer.start();
    testApp = await createTestApp({
      AI_PROVIDER: 'compatible',
      AI_BASE_URL: fake.baseUrl,
      AI_API_KEY: 'sk-atlas-test',
      AI_EMBEDDING_MODEL: EMBEDDING_MODEL,
      VECTOR_SEARCH: 'atlas',
      ATLAS_VECTOR_INDEX: 'chunks_idx',
    });
  });

  afterAll(async () => {
    await testApp.close();
    await fake.stop();
  });

  it('fails loudly on a server without Atlas Vector Search instead of finding nothing', async () => {
    await testApp.api().post('/embeddings').send({ resourceId: 'bio', userId: 'atlas-user', content: corpus('atlas-user').bio }).expect(200);
    const response = await testApp.api().post('/api/v1/search/semantic').send({ query: 'mitochondria', userId: 'atlas-user' }).expect(503);
    expect(response.body.message).toContain('VECTOR_SEARCH=atlas needs MongoDB Atlas with the vector search index "chunks_idx"');
    expect(response.body.message).toContain('not supported by the in-process MongoDB server');
  });
});
