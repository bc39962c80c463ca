import { ModulesContainer, Reflector } from '@nestjs/core';
import { Logger } from '@nestjs/common';
import { createHash, randomBytes } from 'node:crypto';
import request from 'supertest';
import { AccessGuard } from '../src/auth/access.guard';
import { ApiKeysService } from '../src/auth/api-keys.service';
import { RateLimitService } from '../src/auth/rate-limit.service';
import { listRouteAccess } from '../src/auth/route-access';
import { RedisService } from '../src/redis/redis.service';
import { TokenTrackingService } from '../src/token-tracking/token-tracking.service';
import { createTestApp, TestApp } from './support/test-app';

type Caller = 'none' | 'unknown' | 'revoked' | 'admin' | 'admin-key' | 'service' | 'user-own' | 'user-other';
const CALLERS: Caller[] = ['none', 'unknown', 'revoked', 'admin', 'admin-key', 'service', 'user-own', 'user-other'];

const OWN_USER = 'alice';
const OTHER_USER = 'bob';
const ALLOWED_ORIGIN = 'https://app.example.com';

interface Endpoint {
  name: string;
  level: 'public' | 'admin' | 'service' | 'user';
  /** Status when the caller is allowed (the handler's own answer). */
  ok: number;
  /** The field a user key is checked against, named in the 403. */
  ownerField?: string;
  /** The response has no seed 003 `tokenUsage` to check (other shapes, or not an AI call). */
  noTokenUsage?: true;
  send(agent: request.Agent, owner: string): request.Test;
}

interface CreatedKey {
  id: string;
  key: string;
  prefix: string;
  role: string;
  userId: string | null;
}

const unknownKey = () => `tl_user_${randomBytes(30).toString('hex').slice(0, 40)}`;

describe('Authentication and authorisation', () => {
  let testApp: TestApp;
  const keys = {} as Record<'admin-key' | 'service' | 'user' | 'revoked' | 'victim', CreatedKey>;

  const createKey = async (body: Record<string, unknown>): Promise<CreatedKey> =>
    (await testApp.api().post('/admin/api-keys').send(body).expect(201)).body as CreatedKey;

  beforeAll(async () => {
    testApp = await createTestApp({ PLUGIN_BUILD_TOOL: 'javac', CORS_ORIGINS: `${ALLOWED_ORIGIN}, http://localhost:5173` });
    keys['admin-key'] = await createKey({ role: 'admin', name: 'second admin' });
    keys.service = await createKey({ role: 'service', name: 'backend' });
    keys.user = await createKey({ role: 'user', userId: OWN_USER });
    keys.revoked = await createKey({ role: 'user', userId: OWN_USER, name: 'to be revoked' });
    keys.victim = await createKey({ role: 'user', userId: 'victim' });
    await testApp.api().delete(`/admin/api-keys/${keys.revoked.id}`).expect(200);
    const tracking = testApp.app.get(TokenTrackingService);
    for (const userId of [OWN_USER, OTHER_USER]) {
      await tracking.trackTokenUsage(userId, {
        operationType: 'chat_info',
        model: 'm',
        provider: 'simulated',
        promptTokens: 1,
        completionTokens: 1,
        costMicros: 0,
        costSource: 'catalog',
        latencyMs: 1,
        success: true,
      });
    }
  });

  afterAll(() => testApp.close());

  const agentFor = (caller: Caller): request.Agent => {
    const agent = request.agent(testApp.http);
    const key = {
      none: undefined,
      unknown: unknownKey(),
      revoked: keys.revoked.key,
      admin: testApp.adminKey,
      'admin-key': keys['admin-key'].key,
      service: keys.service.key,
      'user-own': keys.user.key,
      'user-other': keys.user.key,
    }[caller];
    return key ? agent.set('authorization', `Bearer ${key}`) : agent;
  };

  const ENDPOINTS: Endpoint[] = [
    { name: 'GET /user/:userId/token-usage', level: 'user', ok: 200, ownerField: 'userId', send: (agent, owner) => agent.get(`/user/${owner}/token-usage`) },
    {
      name: 'POST /plugin/generate',
      level: 'user',
      ok: 200,
      ownerField: 'userId',
      send: (agent, owner) => agent.post('/plugin/generate').send({ prompt: 'A /home command', userId: owner }),
    },
    {
      name: 'POST /plugin/generate-and-compile',
      level: 'user',
      ok: 200,
      ownerField: 'userId',
      send: (agent, owner) => agent.post('/plugin/generate-and-compile').send({ prompt: 'A /home command', userId: owner }),
    },
    {
      name: 'POST /plugin/generate-only',
      level: 'user',
      ok: 200,
      ownerField: 'userId',
      send: (agent, owner) => agent.post('/plugin/generate-only').send({ prompt: 'A /home command', userId: owner }),
    },
    {
      name: 'POST /ai/generate-code',
      level: 'user',
      ok: 200,
      ownerField: 'userId',
      send: (agent, owner) => agent.post('/ai/generate-code').send({ prompt: 'Teleports', pluginName: 'Teleport', userId: owner }),
    },
    {
      name: 'POST /chat/message',
      level: 'user',
      ok: 200,
      ownerField: 'username',
      send: (agent, owner) => agent.post('/chat/message').send({ message: 'What is plugin.yml?', username: owner }),
    },
    { name: 'GET /api/v1/tokens/usage/:userId', level: 'user', ok: 200, ownerField: 'userId', send: (agent, owner) => agent.get(`/api/v1/tokens/usage/${owner}`) },
    { name: 'POST /api/v1/tokens/reset/:userId', level: 'admin', ok: 200, send: (agent, owner) => agent.post(`/api/v1/tokens/reset/${owner}`) },
    {
      name: 'POST /api/v1/orcha/chat',
      level: 'user',
      ok: 200,
      ownerField: 'user_id',
      noTokenUsage: true,
      send: (agent, owner) => agent.post('/api/v1/orcha/chat').send({ user_id: owner, message: 'hi' }),
    },
    { name: 'GET /user/:userId/limits', level: 'user', ok: 200, ownerField: 'userId', send: (agent, owner) => agent.get(`/user/${owner}/limits`) },
    { name: 'PUT /user/:userId/tier', level: 'admin', ok: 200, send: (agent, owner) => agent.put(`/user/${owner}/tier`).send({ tier: 'JIVE' }) },
    { name: 'PUT /user/:userId/limits', level: 'admin', ok: 200, send: (agent, owner) => agent.put(`/user/${owner}/limits`).send({}) },
    {
      name: 'POST /embeddings',
      level: 'user',
      ok: 200,
      ownerField: 'userId',
      noTokenUsage: true,
      send: (agent, owner) => agent.post('/embeddings').send({ resourceId: 'matrix-doc', content: 'Some text to embed', userId: owner }),
    },
    // Allowed callers reach the handler, which has no such resource: 404.
    { name: 'DELETE /embeddings/:resourceId', level: 'user', ok: 404, ownerField: 'userId', send: (agent, owner) => agent.delete(`/embeddings/never-embedded?userId=${owner}`) },
    { name: 'GET /embeddings/cache/stats', level: 'admin', ok: 200, send: (agent) => agent.get('/embeddings/cache/stats') },
    {
      name: 'POST /api/v1/search/semantic',
      level: 'user',
      ok: 200,
      ownerField: 'userId',
      noTokenUsage: true,
      send: (agent, owner) => agent.post('/api/v1/search/semantic').send({ query: 'text', userId: owner }),
    },
    {
      name: 'POST /api/v1/search/answer',
      level: 'user',
      ok: 200,
      ownerField: 'userId',
      noTokenUsage: true,
      send: (agent, owner) => agent.post('/api/v1/search/answer').send({ query: 'text', userId: owner }),
    },
    { name: 'GET /api/v1/search/cache/stats', level: 'admin', ok: 200, send: (agent) => agent.get('/api/v1/search/cache/stats') },
    { name: 'GET /api/v1/search/token-usage', level: 'user', ok: 200, ownerField: 'user', send: (agent, owner) => agent.get(`/api/v1/search/token-usage?days=7&user=${owner}`) },
    { name: 'GET /api/v1/search/token-usage/recent', level: 'user', ok: 200, ownerField: 'user', send: (agent, owner) => agent.get(`/api/v1/search/token-usage/recent?user=${owner}`) },
    { name: 'GET /api/v1/search/token-usage/all', level: 'admin', ok: 200, send: (agent) => agent.get('/api/v1/search/token-usage/all?days=7') },
    { name: 'GET /api/v1/usage-events', level: 'user', ok: 200, ownerField: 'user', send: (agent, owner) => agent.get(`/api/v1/usage-events?user=${owner}`) },
    {
      name: 'POST /api/usage',
      level: 'user',
      ok: 201,
      ownerField: 'userId',
      noTokenUsage: true,
      send: (agent, owner) => agent.post('/api/usage').send({ toolName: 'search_web', success: true, executionTimeMs: 5, userId: owner }),
    },
    { name: 'GET /api/usage', level: 'admin', ok: 200, send: (agent) => agent.get('/api/usage?period=month') },
    { name: 'GET /api/usage/today', level: 'admin', ok: 200, send: (agent) => agent.get('/api/usage/today') },
    { name: 'GET /metrics', level: 'public', ok: 200, send: (agent) => agent.get('/metrics') },
    {
      name: 'POST /v1/chat/completions',
      level: 'user',
      ok: 200,
      ownerField: 'user',
      noTokenUsage: true,
      send: (agent, owner) => agent.post('/v1/chat/completions').send({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }], user: owner }),
    },
    {
      name: 'POST /v1/embeddings',
      level: 'user',
      ok: 200,
      ownerField: 'user',
      noTokenUsage: true,
      send: (agent, owner) => agent.post('/v1/embeddings').send({ model: 'text-embedding-3-small', input: 'hi', user: owner }),
    },
    { name: 'GET /v1/models', level: 'user', ok: 200, ownerField: 'user', send: (agent, owner) => agent.get(`/v1/models?user=${owner}`) },
    { name: 'GET /usage', level: 'public', ok: 200, send: (agent) => agent.get('/usage') },
    { name: 'GET /health', level: 'public', ok: 200, send: (agent) => agent.get('/health') },
    { name: 'GET /health/ready', level: 'public', ok: 200, send: (agent) => agent.get('/health/ready') },
    {
      name: 'POST /admin/api-keys',
      level: 'admin',
      ok: 201,
      send: (agent, owner) => agent.post('/admin/api-keys').send({ role: 'user', userId: owner }),
    },
    { name: 'GET /admin/api-keys', level: 'admin', ok: 200, send: (agent) => agent.get('/admin/api-keys') },
    // Revoking is idempotent, so every allowed caller can revoke the same victim.
    { name: 'DELETE /admin/api-keys/:id', level: 'admin', ok: 200, send: (agent) => agent.delete(`/admin/api-keys/${keys.victim.id}`) },
  ];

  function expectedStatus(endpoint: Endpoint, caller: Caller): number {
    if (endpoint.level === 'public') return endpoint.ok;
    if (caller === 'none' || caller === 'unknown' || caller === 'revoked') return 401;
    const role = caller === 'admin' || caller === 'admin-key' ? 'admin' : caller === 'service' ? 'service' : 'user';
    if (endpoint.level === 'admin') return role === 'admin' ? endpoint.ok : 403;
    if (endpoint.level === 'service') return role === 'user' ? 403 : endpoint.ok;
    return caller === 'user-other' ? 403 : endpoint.ok;
  }

  const MATRIX = ENDPOINTS.flatMap((endpoint) => CALLERS.map((caller) => [endpoint.name, caller, expectedStatus(endpoint, caller), endpoint] as const));

  describe('the matrix: every endpoint x every caller', () => {
    it.each(MATRIX)('%s as %s -> %i', async (_name, caller, expected, endpoint) => {
      const owner = caller === 'user-own' ? OWN_USER : OTHER_USER;
      const response = await endpoint.send(agentFor(caller), owner);
      expect(response.status).toBe(expected);
      expect(response.headers['x-request-id']).toBeTruthy();
      if (expected === 401) {
        expect(response.headers['www-authenticate']).toMatch(/^Bearer/);
        expect(response.body).toEqual({
          statusCode: 401,
          error: 'Unauthorized',
          message: { none: expect.stringContaining('Missing API key'), unknown: 'Unknown API key', revoked: 'API key has been revoked' }[caller as string],
          requestId: response.headers['x-request-id'],
        });
      }
      if (expected === 403) {
        expect(response.body).toMatchObject({ statusCode: 403, error: 'Forbidden' });
        if (endpoint.level === 'user') expect(response.body.message).toBe(`${endpoint.ownerField} "${OTHER_USER}" does not belong to this API key`);
        else expect(response.body.message).toContain('requires an admin API key');
      }
      if (expected === endpoint.ok && endpoint.ownerField && endpoint.name.startsWith('POST') && !endpoint.noTokenUsage) {
        expect(response.body.tokenUsage).toMatchObject({ trackingEnabled: true });
      }
    });
  });

  describe('every route declares its access', () => {
    it('walks every registered Nest route and finds an @Access on each', () => {
      const routes = listRouteAccess(testApp.app.get(ModulesContainer), testApp.app.get(Reflector));
      expect(routes.filter((route) => !route.access)).toEqual([]);
      const table = Object.fromEntries(routes.map((route) => [`${route.method} ${route.path}`, route.access]));
      // The walker sees the routes this spec knows, with the access the matrix assumes.
      for (const endpoint of ENDPOINTS) {
        const access = table[endpoint.name];
        expect({ endpoint: endpoint.name, level: access?.level }).toEqual({ endpoint: endpoint.name, level: endpoint.level });
      }
      expect(table['GET /user/:userId/token-usage']).toEqual({ level: 'user', owner: { source: 'param', field: 'userId' } });
      expect(table['POST /chat/message']).toEqual({ level: 'user', owner: { source: 'body', field: 'username' } });
    });

    it('denies a handler that declares nothing (fail closed)', async () => {
      const guard = new AccessGuard(
        testApp.app.get(Reflector),
        testApp.app.get(ApiKeysService, { strict: false }),
        testApp.app.get(RateLimitService, { strict: false }),
        testApp.config,
      );
      class Undeclared {
        handler(): void {}
      }
      const context = {
        getHandler: () => Undeclared.prototype.handler,
        getClass: () => Undeclared,
        switchToHttp: () => ({ getRequest: () => ({ headers: { authorization: `Bearer ${testApp.adminKey}` } }), getResponse: () => ({}) }),
      };
      jest.spyOn(Logger.prototype, 'error').mockImplementationOnce(() => undefined);
      await expect(guard.canActivate(context as never)).rejects.toMatchObject({ status: 403 });
    });
  });

  describe('key lifecycle', () => {
    it('shows the key once and stores only its SHA-256', async () => {
      const created = await createKey({ role: 'user', userId: 'carol', name: 'carol laptop' });
      expect(created.key).toMatch(/^tl_user_[A-Za-z0-9]{40}$/);
      expect(created).toMatchObject({ role: 'user', userId: 'carol', name: 'carol laptop', lastUsedAt: null, revokedAt: null });
      expect(created.key.startsWith(created.prefix)).toBe(true);
      expect(created.prefix.length).toBeLessThanOrEqual(16);

      const stored = await testApp.db.collection('api_keys').findOne({ prefix: created.prefix });
      expect(stored!.hash).toBe(createHash('sha256').update(created.key).digest('hex'));
      const secret = created.key.slice(created.prefix.length);
      expect(JSON.stringify(stored)).not.toContain(secret);
      expect(JSON.stringify(await testApp.db.collection('api_keys').find().toArray())).not.toContain(created.key);
    });

    it('lists metadata without hashes or keys, newest first', async () => {
      const response = await testApp.api().get('/admin/api-keys').expect(200);
      const listed = response.body as Array<Record<string, unknown>>;
      expect(listed.length).toBeGreaterThanOrEqual(5);
      for (const entry of listed) {
        expect(Object.keys(entry).sort()).toEqual(['createdAt', 'id', 'lastUsedAt', 'name', 'prefix', 'revokedAt', 'role', 'userId']);
      }
      const text = JSON.stringify(listed);
      for (const key of Object.values(keys)) expect(text).not.toContain(key.key.slice(key.prefix.length));
      expect(listed.find((entry) => entry.id === keys.revoked.id)?.revokedAt).toEqual(expect.any(String));
      expect(listed.find((entry) => entry.id === keys.service.id)).toMatchObject({ role: 'service', userId: null, name: 'backend' });
    });

    it.each([
      [{ role: 'user' }, 'userId'],
      [{ role: 'user', userId: 'bad user' }, 'userId must match'],
      [{ role: 'service', userId: 'alice' }, 'userId is only allowed for role user'],
      [{ role: 'root' }, 'role must be one of admin, service, user'],
      [{ role: 'admin', name: '' }, 'name'],
      [{ role: 'admin', extra: 1 }, 'extra'],
    ])('rejects %j with 400 naming %s', async (body, text) => {
      const response = await testApp.api().post('/admin/api-keys').send(body).expect(400);
      expect(response.body.message).toContain(text);
    });

    it('revokes: the key answers 401 at once; unknown id 404, malformed id 400', async () => {
      const key = await createKey({ role: 'service' });
      await testApp.api(key.key).get('/admin/api-keys').expect(403);
      await testApp.api(key.key).get(`/user/${OWN_USER}/token-usage`).expect(200);
      const revoked = await testApp.api().delete(`/admin/api-keys/${key.id}`).expect(200);
      expect(revoked.body).toMatchObject({ id: key.id, revokedAt: expect.any(String) });
      expect(revoked.body).not.toHaveProperty('key');
      const denied = await testApp.api(key.key).get(`/user/${OWN_USER}/token-usage`).expect(401);
      expect(denied.body.message).toBe('API key has been revoked');

      const missing = await testApp.api().delete('/admin/api-keys/0123456789abcdef01234567').expect(404);
      expect(missing.body.message).toBe('No API key with id "0123456789abcdef01234567"');
      const malformed = await testApp.api().delete('/admin/api-keys/not-an-id').expect(400);
      expect(malformed.body.message).toContain('id must be a 24-character hex ObjectId');
    });

    it('records lastUsedAt without waiting on it', async () => {
      const key = await createKey({ role: 'user', userId: 'dave' });
      await testApp.api(key.key).get('/user/dave/token-usage').expect(404);
      let lastUsedAt: unknown = null;
      for (let i = 0; i < 50 && !lastUsedAt; i += 1) {
        lastUsedAt = (await testApp.db.collection('api_keys').findOne({ prefix: key.prefix }))?.lastUsedAt;
        if (!lastUsedAt) await new Promise((resolve) => setTimeout(resolve, 20));
      }
      expect(lastUsedAt).toBeInstanceOf(Date);
    });
  });

  describe('presenting keys', () => {
    it('accepts x-api-key as well as Authorization: Bearer', async () => {
      await request(testApp.http).get(`/user/${OWN_USER}/token-usage`).set('x-api-key', keys.user.key).expect(200);
      await request(testApp.http).get(`/user/${OTHER_USER}/token-usage`).set('x-api-key', keys.user.key).expect(403);
      await request(testApp.http).get('/admin/api-keys').set('x-api-key', testApp.adminKey).expect(200);
    });

    it('rejects a non-Bearer Authorization header and a near-miss admin key', async () => {
      const basic = await request(testApp.http).get('/admin/api-keys').set('authorization', `Basic ${testApp.adminKey}`).expect(401);
      expect(basic.body.message).toBe('Authorization header must be "Bearer <API key>"');
      const nearMiss = `${testApp.adminKey.slice(0, -1)}X`;
      await testApp.api(nearMiss).get('/admin/api-keys').expect(401);
    });
  });

  describe('a user key never acts untracked or for someone else', () => {
    const ledger = (userId: string) => testApp.db.collection('user_token_usage').findOne({ userId });

    it('fills in an absent userId with the key user, and the usage lands on that user', async () => {
      const key = await createKey({ role: 'user', userId: 'erin' });
      expect(await ledger('erin')).toBeNull();
      const response = await testApp.api(key.key).post('/plugin/generate-only').send({ prompt: 'Untracked?' }).expect(200);
      expect(response.body.tokenUsage).toMatchObject({ requestCount: 1, trackingEnabled: true });
      expect(await ledger('erin')).toMatchObject({ requestCount: 1 });

      await testApp.api(key.key).post('/ai/generate-code').send({ prompt: 'x', pluginName: 'P', userId: null }).expect(200);
      await testApp.api(key.key).post('/chat/message').send({ message: 'hi' }).expect(200);
      expect((await ledger('erin'))!.requestCount).toBeGreaterThanOrEqual(4);
    });

    it('leaves an absent userId absent for admin and service keys (untracked, as before)', async () => {
      const response = await testApp.api(keys.service.key).post('/plugin/generate-only').send({ prompt: 'Anonymous' }).expect(200);
      expect(response.body).not.toHaveProperty('tokenUsage');
    });

    it('refuses operator objects, arrays and query tricks as an owner', async () => {
      const object = await testApp.api(keys.user.key).post('/plugin/generate').send({ prompt: 'x', userId: { $ne: null } }).expect(403);
      expect(object.body.message).toBe('userId {"$ne":null} does not belong to this API key');
      await testApp.api(keys.user.key).post('/plugin/generate').send({ prompt: 'x', userId: [OWN_USER] }).expect(403);
      await testApp.api(keys.user.key).post('/plugin/generate').send([{ prompt: 'x' }]).expect(400);
    });
  });

  describe('HTTP hardening', () => {
    it('sets security headers on every response, errors included, and leaks no stack', async () => {
      for (const response of [await request(testApp.http).get('/health'), await request(testApp.http).get('/admin/api-keys')]) {
        expect(response.headers['x-content-type-options']).toBe('nosniff');
        expect(response.headers['x-frame-options']).toBe('SAMEORIGIN');
        expect(response.headers['content-security-policy']).toContain("default-src 'self'");
        expect(response.headers['strict-transport-security']).toBeTruthy();
        expect(response.headers['x-powered-by']).toBeUndefined();
        expect(JSON.stringify(response.body)).not.toMatch(/\bat .+\.(ts|js):\d+/);
      }
    });

    it('still serves the Swagger UI and documents both security schemes', async () => {
      const page = await request(testApp.http).get('/docs').redirects(1).expect(200);
      expect(page.headers['content-type']).toContain('text/html');
      expect(page.text).not.toMatch(/<script>(?!\s*<\/script>)/);
      await request(testApp.http).get('/docs/swagger-ui-init.js').expect(200);
      await request(testApp.http).get('/docs/swagger-ui-bundle.js').expect(200);

      const spec = (await request(testApp.http).get('/docs-json').expect(200)).body;
      expect(spec.components.securitySchemes).toMatchObject({
        bearer: { type: 'http', scheme: 'bearer' },
        'api-key': { type: 'apiKey', in: 'header', name: 'x-api-key' },
      });
      const usage = spec.paths['/user/{userId}/token-usage'].get;
      expect(usage.security).toEqual(expect.arrayContaining([{ bearer: [] }, { 'api-key': [] }]));
      expect(Object.keys(usage.responses)).toEqual(expect.arrayContaining(['401', '403', '429']));
      // No key needed: an empty security requirement, which linters accept as declared.
      expect(spec.paths['/health'].get.security).toEqual([{}]);
      expect(spec.paths['/admin/api-keys'].post.responses['201']).toBeDefined();
    });

    it('answers a preflight from an allowed origin and not from any other', async () => {
      const allowed = await request(testApp.http)
        .options('/plugin/generate')
        .set('origin', ALLOWED_ORIGIN)
        .set('access-control-request-method', 'POST')
        .set('access-control-request-headers', 'authorization,content-type')
        .expect(204);
      expect(allowed.headers['access-control-allow-origin']).toBe(ALLOWED_ORIGIN);
      expect(allowed.headers['access-control-allow-headers']).toContain('authorization');
      expect(allowed.headers['access-control-allow-credentials']).toBeUndefined();

      const denied = await request(testApp.http)
        .options('/plugin/generate')
        .set('origin', 'https://evil.example.com')
        .set('access-control-request-method', 'POST');
      expect(denied.status).not.toBe(204);
      expect(denied.headers['access-control-allow-origin']).toBeUndefined();

      const simple = await request(testApp.http).get('/health').set('origin', 'http://localhost:5173').expect(200);
      expect(simple.headers['access-control-allow-origin']).toBe('http://localhost:5173');
      expect(simple.headers['access-control-expose-headers']).toContain('retry-after');
    });
  });
});

describe('Per-key rate limiting', () => {
  let limited: TestApp;
  let withoutRedis: TestApp;

  beforeAll(async () => {
    limited = await createTestApp({ RATE_LIMIT_PER_MINUTE: 3 });
    // Redis goes away for this app (as after a Redis crash), so counting happens in process.
    withoutRedis = await createTestApp({ RATE_LIMIT_PER_MINUTE: 3 });
    withoutRedis.app.get(RedisService).client.disconnect(false);
  });

  afterAll(async () => {
    await limited.close();
    await withoutRedis.close();
  });

  it.each([
    ['Redis', () => limited],
    ['the in-process fallback (Redis down)', () => withoutRedis],
  ])('answers 429 with Retry-After past the per-key limit, counted in %s', async (_store, appOf) => {
    const testApp = appOf();
    const created = (await testApp.api().post('/admin/api-keys').send({ role: 'user', userId: 'frank' }).expect(201)).body as CreatedKey;
    const other = (await testApp.api().post('/admin/api-keys').send({ role: 'user', userId: 'grace' }).expect(201)).body as CreatedKey;

    for (let i = 0; i < 3; i += 1) {
      const response = await testApp.api(created.key).get('/user/frank/token-usage').expect(404);
      expect(response.headers['x-ratelimit-remaining']).toBe(String(2 - i));
    }
    const refused = await testApp.api(created.key).get('/user/frank/token-usage').expect(429);
    expect(Number(refused.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    expect(Number(refused.headers['retry-after'])).toBeLessThanOrEqual(60);
    expect(refused.body).toMatchObject({ statusCode: 429, error: 'Too Many Requests', message: expect.stringContaining('3 requests per minute') });

    // Per key: another key has its own budget; health checks are never limited.
    await testApp.api(other.key).get('/user/grace/token-usage').expect(404);
    for (let i = 0; i < 5; i += 1) await request(testApp.http).get('/health').expect(200);
  });

  it('keeps the counters in Redis when Redis is up', async () => {
    const redis = limited.app.get(RedisService);
    // KEYS patterns are not prefixed by the client; the returned names carry the prefix.
    const counters = await redis.client.keys(`${redis.client.options.keyPrefix ?? ''}ratelimit:user:*`);
    expect(counters.length).toBeGreaterThanOrEqual(2);
    expect(withoutRedis.app.get(RedisService).isReady).toBe(false);
  });
});

describe('AUTH_DISABLED', () => {
  it('treats every request as admin and warns at start', async () => {
    const warn = jest.spyOn(Logger.prototype, 'warn');
    const testApp = await createTestApp({ AUTH_DISABLED: true });
    try {
      expect(warn.mock.calls.some(([message]) => String(message).includes('AUTH_DISABLED=true'))).toBe(true);
      await request(testApp.http).get('/admin/api-keys').expect(200);
      await request(testApp.http).post('/admin/api-keys').send({ role: 'service' }).expect(201);
      await request(testApp.http).get('/user/anyone/token-usage').expect(404);

      // With CORS_ORIGINS unset, only local development origins are allowed (test/cors-browser.e2e-spec.ts).
      const preflight = await request(testApp.http).options('/health').set('origin', ALLOWED_ORIGIN).set('access-control-request-method', 'GET');
      expect(preflight.headers['access-control-allow-origin']).toBeUndefined();
    } finally {
      warn.mockRestore();
      await testApp.close();
    }
  });
});
