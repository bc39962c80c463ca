import { UsageEventsService } from '../src/analytics/usage-events.service';
import { createTestApp, TestApp } from './support/test-app';

/** Client-chosen ids (recordId, Idempotency-Key) live in their owner's namespace. */
describe('client ids scoped to their owner', () => {
  let testApp: TestApp;
  let aliceKey: string;
  let bobKey: string;

  const toolEvents = (userId: string) => testApp.db.collection('usage_events').countDocuments({ user_id: userId, operation_type: 'tool_call' });
  const requestCount = async (userId: string) => (await testApp.db.collection('user_token_usage').findOne({ userId }))?.requestCount ?? 0;

  beforeAll(async () => {
    testApp = await createTestApp({ RATE_LIMIT_PER_MINUTE: 100_000 });
    const created = async (userId: string) => (await testApp.api().post('/admin/api-keys').send({ role: 'user', userId }).expect(201)).body.key as string;
    aliceKey = await created('scoped-alice');
    bobKey = await created('scoped-bob');
  });

  afterAll(() => testApp.close());

  describe('POST /api/usage recordId', () => {
    const call = { toolName: 'search_web', success: true, executionTimeMs: 40, recordId: 'tool-call-future-9' };

    it("records another user's reuse of a recordId for that user only", async () => {
      await testApp.api(aliceKey).post('/api/usage').send(call).expect(201);
      const bob = await testApp.api(bobKey).post('/api/usage').send(call).expect(201);
      expect(bob.body).toMatchObject({ status: 'ok', recordId: call.recordId });
      expect(bob.headers['idempotent-replayed']).toBeUndefined();
      await testApp.app.get(UsageEventsService).settled();
      expect(await toolEvents('scoped-alice')).toBe(1);
      expect(await toolEvents('scoped-bob')).toBe(1);
    });

    it('answers a retry of the same call as a replay and counts it once', async () => {
      const again = await testApp.api(aliceKey).post('/api/usage').send(call).expect(201);
      expect(again.headers['idempotent-replayed']).toBe('true');
      expect(again.body).toMatchObject({ status: 'ok', recordId: call.recordId, toolName: call.toolName });
      await testApp.app.get(UsageEventsService).settled();
      expect(await toolEvents('scoped-alice')).toBe(1);
    });

    it('answers 409 naming the recordId when it is reused for a different call, and records nothing', async () => {
      const conflict = await testApp.api(aliceKey).post('/api/usage').send({ ...call, success: false }).expect(409);
      expect(conflict.body.message).toContain('tool-call-future-9');
      await testApp.api(aliceKey).post('/api/usage').send({ ...call, toolName: 'other_tool' }).expect(409);
      await testApp.app.get(UsageEventsService).settled();
      expect(await toolEvents('scoped-alice')).toBe(1);
    });

    it('catches a concurrent reuse with a different call', async () => {
      const racing = await Promise.all(
        ['tool_a', 'tool_b', 'tool_a', 'tool_b'].map((toolName) => testApp.api(bobKey).post('/api/usage').send({ ...call, toolName, recordId: 'racing-id' })),
      );
      const statuses = racing.map((response) => response.status);
      const winner = racing.find((response) => response.status === 201)!.body.toolName;
      expect(statuses.filter((status) => status === 201)).toHaveLength(2);
      expect(statuses.filter((status) => status === 409)).toHaveLength(2);
      expect(racing.filter((response) => response.status === 201).every((response) => response.body.toolName === winner)).toBe(true);
      await testApp.app.get(UsageEventsService).settled();
      expect(await testApp.db.collection('usage_events').countDocuments({ user_id: 'scoped-bob', tool_name: { $in: ['tool_a', 'tool_b'] } })).toBe(1);
    });
  });

  describe('Idempotency-Key', () => {
    const generate = (key: string, idempotencyKey: string, body: object) => testApp.api(key).post('/plugin/generate-only').set('idempotency-key', idempotencyKey).send(body);

    it("runs another user's request with the same key as their own, never answering with the first user's response", async () => {
      const alice = await generate(aliceKey, 'shared-key-1', { prompt: 'Alice plugin' }).expect(200);
      const bob = await generate(bobKey, 'shared-key-1', { prompt: 'Bob plugin' }).expect(200);
      expect(bob.headers['idempotent-replayed']).toBeUndefined();
      expect(bob.body).not.toEqual(alice.body);
      expect(await requestCount('scoped-alice')).toBe(1);
      expect(await requestCount('scoped-bob')).toBe(1);

      const bobAgain = await generate(bobKey, 'shared-key-1', { prompt: 'Bob plugin' }).expect(200);
      expect(bobAgain.headers['idempotent-replayed']).toBe('true');
      expect(bobAgain.body).toEqual(bob.body);
      await generate(bobKey, 'shared-key-1', { prompt: 'Something else' }).expect(422);
      expect(await requestCount('scoped-alice')).toBe(1);
      expect(await requestCount('scoped-bob')).toBe(1);
    });

    it('scopes a service key acting for two users by the user, and a user key with an admin key acting for it share one', async () => {
      await testApp.api().post('/plugin/generate-only').set('idempotency-key', 'shared-key-2').send({ prompt: 'For alice', userId: 'scoped-alice' }).expect(200);
      const forBob = await testApp.api().post('/plugin/generate-only').set('idempotency-key', 'shared-key-2').send({ prompt: 'For bob', userId: 'scoped-bob' }).expect(200);
      expect(forBob.headers['idempotent-replayed']).toBeUndefined();
      expect(await requestCount('scoped-alice')).toBe(2);
      expect(await requestCount('scoped-bob')).toBe(2);

      const ownRetry = await generate(bobKey, 'shared-key-2', { prompt: 'For bob' }).expect(200);
      expect(ownRetry.headers['idempotent-replayed']).toBe('true');
      expect(await requestCount('scoped-bob')).toBe(2);
    });
  });
});
