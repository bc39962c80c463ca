import { createHash } from 'node:crypto';
import request from 'supertest';
import { createTestApp, TestApp } from './support/test-app';

type Case = {
  method: 'get' | 'post' | 'put' | 'delete';
  path: string;
  body?: unknown;
  headers?: Record<string, string>;
  raw?: string;
  /** Text the error message must contain: it names the problem. */
  names: string;
  status?: number;
};

const valid = { prompt: 'x', userId: 'u1' };
const chat = { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'x' }], user: 'u1' };

const CASES: Case[] = [
  { method: 'post', path: '/plugin/generate', body: {}, names: 'prompt' },
  { method: 'post', path: '/plugin/generate', body: { prompt: 5, userId: 'u1' }, names: 'prompt' },
  { method: 'post', path: '/plugin/generate', body: { ...valid, complexity: '7' }, names: 'complexity' },
  { method: 'post', path: '/plugin/generate', body: { ...valid, complexity: -1 }, names: 'complexity' },
  { method: 'post', path: '/plugin/generate', body: { ...valid, complexity: 1e12 }, names: 'complexity' },
  { method: 'post', path: '/plugin/generate', body: { ...valid, autoCompile: 'true' }, names: 'autoCompile' },
  { method: 'post', path: '/plugin/generate', body: { ...valid, name: 'a'.repeat(100) }, names: 'name' },
  { method: 'post', path: '/plugin/generate', body: { ...valid, name: 'evil.name' }, names: 'name' },
  { method: 'post', path: '/plugin/generate', body: { prompt: 'x', userId: { $gt: '' } }, names: 'userId' },
  { method: 'post', path: '/plugin/generate', body: { prompt: 'x', userId: 'a$b' }, names: 'userId' },
  { method: 'post', path: '/plugin/generate', body: { prompt: 'x', userId: 'x'.repeat(129) }, names: 'userId' },
  { method: 'post', path: '/plugin/generate', body: { ...valid, admin: true }, names: 'admin' },
  { method: 'post', path: '/plugin/generate', body: { ...valid, prompt: 'x'.repeat(20_001) }, names: 'prompt' },
  { method: 'post', path: '/plugin/generate', body: { ...valid, prompt: ['a'] }, names: 'prompt' },
  { method: 'post', path: '/plugin/generate', body: { ...valid, 'a.b': 1 }, names: 'a.b' },
  { method: 'post', path: '/plugin/generate-only', body: { prompt: null }, names: 'prompt' },
  { method: 'post', path: '/plugin/generate-only', body: { prompt: 'x', userId: ['a'] }, names: 'userId' },
  { method: 'post', path: '/plugin/generate-and-compile', body: { prompt: 'x', complexity: 0 }, names: 'complexity' },
  { method: 'post', path: '/ai/generate-code', body: { prompt: 'x' }, names: 'pluginName' },
  { method: 'post', path: '/ai/generate-code', body: { prompt: 'x', pluginName: 'bad name' }, names: 'pluginName' },
  { method: 'post', path: '/ai/generate-code', body: { prompt: '', pluginName: 'P' }, names: 'prompt' },
  { method: 'post', path: '/chat/message', body: { message: 'hi', username: '$where' }, names: 'username' },
  { method: 'post', path: '/chat/message', body: { message: 123, username: 'u1' }, names: 'message' },
  { method: 'post', path: '/chat/message', body: { message: 'hi', username: 'u1', pluginName: {} }, names: 'pluginName' },
  { method: 'post', path: '/api/v1/orcha/chat', body: { user_id: 'u1' }, names: 'message' },
  { method: 'post', path: '/api/v1/orcha/chat', body: { user_id: 'u1', message: 'x', use_rag: 'yes' }, names: 'use_rag' },
  { method: 'post', path: '/api/v1/orcha/chat', body: { user_id: 12, message: 'x' }, names: 'user_id' },
  { method: 'get', path: '/api/v1/tokens/usage/%24ne', names: 'userId' },
  { method: 'get', path: '/api/v1/tokens/usage/a%20b', names: 'userId' },
  { method: 'post', path: '/api/v1/tokens/reset/%7B%7D', names: 'userId' },
  { method: 'get', path: '/user/a.b%24/token-usage', names: 'userId' },
  { method: 'get', path: '/user/a%0d%0aSet-Cookie:x/limits', names: 'userId' },
  { method: 'put', path: '/user/u1/tier', body: { tier: 'gold' }, names: 'tier' },
  { method: 'put', path: '/user/u1/tier', body: { tier: 5 }, names: 'tier' },
  { method: 'put', path: '/user/u1/tier', body: {}, names: 'tier' },
  { method: 'put', path: '/user/u1/limits', body: { dailyTokens: -1 }, names: 'dailyTokens' },
  { method: 'put', path: '/user/u1/limits', body: { dailyTokens: 1.5 }, names: 'dailyTokens' },
  { method: 'put', path: '/user/u1/limits', body: { monthlyCostUsd: 'free' }, names: 'monthlyCostUsd' },
  { method: 'put', path: '/user/u1/limits', body: { failMode: 'maybe' }, names: 'failMode' },
  { method: 'put', path: '/user/u1/limits', body: { rolling24hTokens: { $gt: 0 } }, names: 'rolling24hTokens' },
  { method: 'post', path: '/embeddings', body: { resourceId: 'r', contents: 'not an array' }, names: 'contents' },
  { method: 'post', path: '/embeddings', body: { resourceId: 'a/b', content: 'x' }, names: 'resourceId' },
  { method: 'post', path: '/embeddings', body: { resourceId: 'r', content: 'x', userId: 'bad user' }, names: 'userId' },
  { method: 'post', path: '/embeddings', body: { resourceId: 'r', contents: Array.from({ length: 513 }, () => 'x') }, names: 'contents' },
  { method: 'delete', path: '/embeddings/r?userId=%24ne', names: 'userId' },
  { method: 'post', path: '/api/v1/search/semantic', body: { query: 'x', userId: 'u1', limit: 0 }, names: 'limit' },
  { method: 'post', path: '/api/v1/search/semantic', body: { query: 'x', userId: 'u1', limit: 51 }, names: 'limit' },
  { method: 'post', path: '/api/v1/search/semantic', body: { query: '', userId: 'u1' }, names: 'query' },
  { method: 'post', path: '/api/v1/search/semantic', body: { query: 'x', userId: 'u1', resourceIds: 'r' }, names: 'resourceIds' },
  { method: 'post', path: '/api/v1/search/answer', body: { query: 'x', userId: 'u1', stream: 'yes' }, names: 'stream' },
  { method: 'get', path: '/api/v1/search/token-usage?days=-1&user=u1', names: 'days' },
  { method: 'get', path: '/api/v1/search/token-usage?days=abc&user=u1', names: 'days' },
  { method: 'get', path: '/api/v1/search/token-usage?days=7&user=%24ne', names: 'user' },
  { method: 'get', path: '/api/v1/search/token-usage/recent?limit=100000&user=u1', names: 'limit' },
  { method: 'get', path: '/api/v1/search/token-usage/all?days=0', names: 'days' },
  { method: 'get', path: '/api/usage?period=decade', names: 'period' },
  { method: 'get', path: '/api/usage/history?days=-3', names: 'days' },
  { method: 'post', path: '/api/usage', body: { toolName: '', success: true, executionTimeMs: 1 }, names: 'toolName' },
  { method: 'post', path: '/api/usage', body: { toolName: 't', success: 'yes', executionTimeMs: 1 }, names: 'success' },
  { method: 'post', path: '/api/usage', body: { toolName: 't', success: true, executionTimeMs: -5 }, names: 'executionTimeMs' },
  { method: 'get', path: '/api/v1/usage-events?from=not-a-date', names: 'from' },
  { method: 'get', path: '/api/v1/usage-events?success=maybe', names: 'success' },
  { method: 'post', path: '/admin/api-keys', body: { role: 'root' }, names: 'role' },
  { method: 'post', path: '/admin/api-keys', body: { role: 'user' }, names: 'userId' },
  { method: 'post', path: '/admin/api-keys', body: { role: 'service', userId: { $ne: 1 } }, names: 'userId' },
  { method: 'delete', path: '/admin/api-keys/not-an-id', names: 'id' },
  { method: 'post', path: '/v1/chat/completions', body: { ...chat, messages: [] }, names: 'messages' },
  { method: 'post', path: '/v1/chat/completions', body: { ...chat, messages: [{ role: 'wizard', content: 'x' }] }, names: 'role' },
  { method: 'post', path: '/v1/chat/completions', body: { ...chat, model: 'bad model' }, names: 'model' },
  { method: 'post', path: '/v1/chat/completions', body: { ...chat, temperature: 5 }, names: 'temperature' },
  { method: 'post', path: '/v1/chat/completions', body: { ...chat, response_format: { type: 'xml' } }, names: 'response_format' },
  { method: 'post', path: '/v1/embeddings', body: { model: 'm', input: [], user: 'u1' }, names: 'input' },
  { method: 'post', path: '/v1/embeddings', body: { model: 'm', input: 5, user: 'u1' }, names: 'input' },
  { method: 'post', path: '/v1/embeddings', body: { model: 'm', input: 'x'.repeat(200_001), user: 'u1' }, names: 'input must be at most 200000' },
  { method: 'post', path: '/v1/embeddings', body: { model: 'm', input: ['x', 'y'.repeat(200_001)], user: 'u1' }, names: 'input[1]' },
  { method: 'post', path: '/plugin/generate', raw: `{"prompt":"x","userId":"u1","x":${'['.repeat(2000)}${']'.repeat(2000)}}`, names: 'nested more than 32 levels' },
  { method: 'post', path: '/v1/chat/completions', raw: `{"model":"m","messages":[{"role":"user","content":${'['.repeat(100_000)}${']'.repeat(100_000)}}]}`, names: 'nested' },
  { method: 'put', path: '/user/u1/limits', raw: '{"monthlyCostUsd":1e-7}', names: 'monthlyCostUsd' },
  { method: 'put', path: '/user/u1/limits', raw: '{"monthlyCostUsd":1e309}', names: 'monthlyCostUsd' },
  { method: 'post', path: '/plugin/generate', raw: '{"prompt": "x", "userId": ', names: 'JSON' },
  { method: 'post', path: '/plugin/generate', raw: JSON.stringify({ ...valid, prompt: 'x'.repeat(1_100_000) }), names: 'too large', status: 413 },
  { method: 'post', path: '/plugin/generate', raw: 'prompt=x', headers: { 'content-type': 'text/plain' }, names: 'media type', status: 415 },
  { method: 'post', path: '/plugin/generate', body: valid, headers: { 'idempotency-key': 'a\tb' }, names: 'Idempotency-Key' },
];

async function snapshot(testApp: TestApp): Promise<string> {
  const hash = createHash('sha256');
  const collections = (await testApp.db.listCollections().toArray()).map((collection) => collection.name).sort();
  for (const name of collections) {
    if (name === 'api_keys') continue; // lastUsedAt of the caller's key may move
    const documents = await testApp.db.collection(name).find({}).sort({ _id: 1 }).toArray();
    hash.update(`${name}:${JSON.stringify(documents)}\n`);
  }
  return hash.digest('hex');
}

describe('bad input', () => {
  let testApp: TestApp;

  beforeAll(async () => {
    testApp = await createTestApp({ RATE_LIMIT_PER_MINUTE: 100_000 });
    // Some state to protect: a tracked request and a stored resource.
    await testApp.api().post('/plugin/generate-only').send({ prompt: 'seed', userId: 'u1' }).expect(200);
    await testApp.api().post('/embeddings').send({ resourceId: 'r', content: 'seed text', userId: 'u1' }).expect(200);
  });

  afterAll(() => testApp.close());

  it(`answers all ${CASES.length} malformed requests with a 4xx JSON error naming the problem, and changes nothing`, async () => {
    expect(CASES.length).toBeGreaterThanOrEqual(60);
    const before = await snapshot(testApp);
    const problems: string[] = [];
    for (const testCase of CASES) {
      let call = request(testApp.http)[testCase.method](testCase.path).set('authorization', `Bearer ${testApp.adminKey}`);
      for (const [name, value] of Object.entries(testCase.headers ?? {})) call = call.set(name, value);
      if (testCase.raw !== undefined) {
        call = call.set('content-type', testCase.headers?.['content-type'] ?? 'application/json').send(testCase.raw);
      } else if (testCase.body !== undefined) {
        call = call.send(testCase.body as object);
      }
      const response = await call;
      const label = `${testCase.method.toUpperCase()} ${testCase.path.slice(0, 60)} ${JSON.stringify(testCase.body ?? testCase.raw ?? '').slice(0, 60)}`;
      const message = String(response.body?.message ?? '');
      if (response.status < 400 || response.status >= 500) problems.push(`${label}: status ${response.status}`);
      else if (testCase.status && response.status !== testCase.status) problems.push(`${label}: status ${response.status}, expected ${testCase.status}`);
      else if (!response.headers['content-type']?.includes('application/json')) problems.push(`${label}: not JSON`);
      else if (!message.toLowerCase().includes(testCase.names.toLowerCase())) problems.push(`${label}: message "${message.slice(0, 120)}" does not name ${testCase.names}`);
    }
    expect(problems).toEqual([]);
    expect(await snapshot(testApp)).toBe(before);
  });
});
