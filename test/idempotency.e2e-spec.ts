import { ConflictException } from '@nestjs/common';
import { Binary } from 'mongodb';
import request from 'supertest';
import { IdempotencyService } from '../src/idempotency/idempotency.service';
import { MAX_STORED_BODY_BYTES } from '../src/idempotency/stored-body';
import { TcpProxy } from './support/tcp-proxy';
import { createTestApp, TestApp } from './support/test-app';
import { testMongoUri } from './support/test-database';

describe(IdempotencyService.name, () => {
  let testApp: TestApp;
  let auth: { authorization: string };

  beforeAll(async () => {
    testApp = await createTestApp();
    auth = { authorization: `Bearer ${testApp.adminKey}` };
  });

  afterAll(() => testApp.close());

  const generate = (key: string | undefined, body: Record<string, unknown>) => {
    const call = request(testApp.http).post('/plugin/generate-only').set(auth);
    return (key === undefined ? call : call.set('idempotency-key', key)).send(body);
  };

  it('counts each of 100 requests sent 3 times concurrently exactly once', async () => {
    const userId = 'idempotent-user';
    const sends = Array.from({ length: 100 }, (_, i) =>
      Array.from({ length: 3 }, () => generate(`key-${i}`, { prompt: `Plugin number ${i}`, userId, name: `P${i}` })),
    ).flat();
    const responses = await Promise.all(sends);
    expect(responses.every((response) => response.status === 200)).toBe(true);

    for (let i = 0; i < 100; i += 1) {
      const [a, b, c] = responses.slice(i * 3, i * 3 + 3).map((response) => response.body);
      expect(b).toEqual(a);
      expect(c).toEqual(a);
      expect(a.pluginProject.name).toBe(`P${i}`);
    }
    expect(responses.filter((response) => response.headers['idempotent-replayed'] === 'true')).toHaveLength(200);

    const ledger = await testApp.db.collection('user_token_usage').findOne({ userId });
    expect(ledger!.requestCount).toBe(100);
    const distinctTotals = new Set(responses.map((response) => response.body.tokenUsage.requestCount));
    expect(distinctTotals.size).toBe(100);
  });

  it('answers 422 when a key is reused with a different body', async () => {
    await generate('reused-key', { prompt: 'first', userId: 'reuse-user' }).expect(200);
    const response = await generate('reused-key', { prompt: 'second', userId: 'reuse-user' }).expect(422);
    expect(response.body.message).toContain('reused-key');
    const ledger = await testApp.db.collection('user_token_usage').findOne({ userId: 'reuse-user' });
    expect(ledger!.requestCount).toBe(1);
  });

  it('treats the same body with keys in another order as the same request', async () => {
    const first = await generate('order-key', { prompt: 'same', userId: 'order-user', name: 'Same' }).expect(200);
    const again = await request(testApp.http)
      .post('/plugin/generate-only')
      .set(auth)
      .set('idempotency-key', 'order-key')
      .send({ name: 'Same', userId: 'order-user', prompt: 'same' })
      .expect(200);
    expect(again.body).toEqual(first.body);
  });

  it('lets a retry run again after the first attempt failed validation', async () => {
    await generate('invalid-first', { prompt: '', userId: 'retry-user' }).expect(400);
    await generate('invalid-first', { prompt: '', userId: 'retry-user' }).expect(400);
    expect(await testApp.db.collection('idempotency_keys').countDocuments({ _id: { $regex: 'invalid-first$' } } as never)).toBe(0);
  });

  it('rejects a malformed key with 400', async () => {
    const response = await generate('bad key with spaces', { prompt: 'x', userId: 'u' }).expect(400);
    expect(response.body.message).toContain('Idempotency-Key must match');
  });

  it('expires keys after 24 hours through a TTL index', async () => {
    const indexes = await testApp.db.collection('idempotency_keys').indexes();
    expect(indexes.find((index) => index.key.expiresAt === 1)).toMatchObject({ expireAfterSeconds: 0 });
    const stored = await testApp.db.collection('idempotency_keys').findOne({ _id: { $regex: 'reused-key$' } } as never);
    expect(stored!.expiresAt.getTime() - stored!.createdAt.getTime()).toBe(24 * 3600 * 1000);
  });

  it('replays a /v1/embeddings answer byte for byte, its vectors stored as float64 binData', async () => {
    const send = () =>
      request(testApp.http)
        .post('/v1/embeddings')
        .set(auth)
        .set('idempotency-key', 'embed-key')
        .send({ model: 'text-embedding-3-small', user: 'embed-user', input: ['first text to embed', 'second one'] })
        .buffer(true)
        .parse((response, callback) => {
          const chunks: Buffer[] = [];
          response.on('data', (chunk: Buffer) => chunks.push(chunk));
          response.on('end', () => callback(null, Buffer.concat(chunks)));
        })
        .expect(200);
    const first = await send();
    const again = await send();
    expect(again.headers['idempotent-replayed']).toBe('true');
    expect(again.headers['content-type']).toBe('application/json; charset=utf-8');
    expect((again.body as Buffer).equals(first.body as Buffer)).toBe(true);
    const answer = JSON.parse((first.body as Buffer).toString('utf8'));
    expect(Object.keys(answer)).toEqual(['object', 'data', 'model', 'usage']);
    expect(answer.data.map((item: { index: number; embedding: number[] }) => [item.index, item.embedding.length > 16])).toEqual([[0, true], [1, true]]);

    const stored = await testApp.db.collection('idempotency_keys').findOne({ _id: { $regex: 'embed-key$' } } as never);
    expect(stored!.body.data[0].embedding._float64).toBeInstanceOf(Binary);
    expect(stored!.body.data[0].embedding._float64.buffer.byteLength).toBe(answer.data[0].embedding.length * 8);
    const ledger = await testApp.db.collection('user_token_usage').findOne({ userId: 'embed-user' });
    expect(ledger!.requestCount).toBe(1);
  });

  it('answers 409 to a retry whose first response was too large to keep, without running it again', async () => {
    const idempotency = testApp.app.get(IdempotencyService);
    // 2 x 1,000,000 float64s: 16 MB stored, past MAX_STORED_BODY_BYTES.
    const huge = { object: 'list', data: [0, 1].map((index) => ({ object: 'embedding', index, embedding: new Array(1_000_000).fill(index + 0.5) })) };
    const scope = '/v1/embeddings|user:huge-user';
    const claim = await idempotency.claim(scope, 'huge-key', 'fingerprint-1');
    expect(claim.kind).toBe('first');
    await idempotency.complete((claim as { id: string }).id, 200, huge);

    const stored = await testApp.db.collection('idempotency_keys').findOne({ _id: `${scope}|huge-key` } as never);
    expect(stored).toMatchObject({ state: 'done', statusCode: 200 });
    expect(stored!.body).toBeUndefined();
    expect(stored!.bodyTooLargeBytes).toBeGreaterThan(MAX_STORED_BODY_BYTES);
    const retry = idempotency.claim(scope, 'huge-key', 'fingerprint-1');
    await expect(retry).rejects.toBeInstanceOf(ConflictException);
    await expect(retry).rejects.toThrow(/"huge-key" was answered, but its response \(15\.\d MiB stored\) was too large to keep for replays; it is not run again/);
    expect(testApp.logs().some((line) => line.msg.includes('not kept for replays'))).toBe(true);
  });
});

describe(`${IdempotencyService.name} on a MongoDB slower than MONGODB_READ_TIMEOUT_MS`, () => {
  let testApp: TestApp;
  let proxy: TcpProxy;
  let auth: { authorization: string };

  beforeAll(async () => {
    const proxied = await TcpProxy.forMongo(testMongoUri());
    proxy = proxied.proxy;
    testApp = await createTestApp({ MONGODB_URI: proxied.uri, MONGODB_READ_TIMEOUT_MS: 50, LOG_LEVEL: 'fatal' });
    auth = { authorization: `Bearer ${testApp.adminKey}` };
  });

  afterAll(async () => {
    await testApp?.close();
    await proxy?.stop();
  });

  it('runs each of 10 keys sent 3 times concurrently once when every claim times out but lands', async () => {
    const userId = 'slow-store-user';
    // Every claim's insert reaches MongoDB but its reply comes after the 50 ms read deadline:
    // the keys are claimed in process while the stored claims land too.
    proxy.delayReplies(300);
    const sends = Array.from({ length: 10 }, (_, i) =>
      Array.from({ length: 3 }, () =>
        request(testApp.http).post('/plugin/generate-only').set(auth).set('idempotency-key', `slow-${i}`).send({ prompt: `Plugin number ${i}`, userId, name: `S${i}` }),
      ),
    ).flat();
    const responses = await Promise.all(sends);
    proxy.delayReplies(0);

    expect(responses.map((response) => response.status)).toEqual(Array(30).fill(200));
    for (let i = 0; i < 10; i += 1) {
      const [a, b, c] = responses.slice(i * 3, i * 3 + 3).map((response) => response.body);
      expect([b, c]).toEqual([a, a]);
    }
    const ledger = await testApp.db.collection('user_token_usage').findOne({ userId });
    expect(ledger?.requestCount).toBe(10);
    // The stored claims that landed were completed as well: a retry elsewhere gets the answer.
    const stored = await testApp.db.collection('idempotency_keys').find({ _id: { $regex: /\|slow-/ } as never }).toArray();
    expect(stored.length).toBe(10);
    expect(stored.every((record) => record.state === 'done')).toBe(true);
  }, 60_000);
});
