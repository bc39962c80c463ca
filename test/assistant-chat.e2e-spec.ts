import request from 'supertest';
import { AssistantChatService } from '../src/chat/assistant-chat.service';
import { FakeProviderServer } from './support/fake-provider.server';
import { createTestApp, TestApp } from './support/test-app';

const MODEL = 'assistant-model';
const usage = (prompt: number, completion: number) => ({ prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion });
const sentMessages = (fake: FakeProviderServer) =>
  (fake.requests.at(-1)!.body?.messages as Array<{ role: string; content: string }>).map((message) => `${message.role}:${message.content}`);

describe(`POST /chat (${AssistantChatService.name})`, () => {
  let fake: FakeProviderServer;
  let testApp: TestApp;

  beforeAll(async () => {
    fake = await FakeProviderServer.start();
    testApp = await createTestApp({
      AI_PROVIDER: 'compatible',
      AI_BASE_URL: fake.baseUrl,
      AI_API_KEY: 'sk-assistant-test-key',
      AI_PRIMARY_MODEL: MODEL,
      AI_FALLBACK_MODEL: 'none',
      CHAT_HISTORY_LIMIT: 4,
    });
  });

  afterEach(() => fake.reset());

  afterAll(async () => {
    await testApp.close();
    await fake.stop();
  });

  it("answers in seed 001's AIResponse shape and tracks the call for user_id", async () => {
    fake.script(MODEL, { text: "Here's your study schedule for this week...", usage: usage(1250, 450) });
    const before = Date.now();
    const { body } = await testApp.api().post('/chat').send({ user_id: 'seed-user', message: 'Plan my study week' }).expect(200);

    expect(Object.keys(body).sort()).toEqual(
      ['blocks', 'conversation_id', 'intent', 'model', 'provider', 'stage', 'text', 'timestamp', 'token_usage'].sort(),
    );
    expect(body).toMatchObject({
      stage: 'response',
      text: "Here's your study schedule for this week...",
      blocks: [],
      intent: null,
      model: MODEL,
      token_usage: { prompt_tokens: 1250, completion_tokens: 450, total_tokens: 1700, embedding_tokens: 0 },
    });
    expect(body.token_usage.cost_estimate_usd).toEqual(expect.any(Number));
    expect(body.conversation_id).toMatch(/^conv_[0-9a-f]{24}$/);
    expect(new Date(body.timestamp).toISOString()).toBe(body.timestamp);
    expect(new Date(body.timestamp).getTime()).toBeGreaterThanOrEqual(before - 1000);

    const ledger = await testApp.api().get('/user/seed-user/token-usage').expect(200);
    expect(ledger.body).toMatchObject({ totalTokens: 1700, promptTokens: 1250, completionTokens: 450, requestCount: 1 });
    const events = await testApp.db.collection('usage_events').find({ user_id: 'seed-user' }).toArray();
    expect(events.map((event) => [event.operation_type, event.total_tokens])).toEqual([['orcha_chat', 1700]]);
  });

  it('keeps a conversation by conversation_id: earlier turns go with the next message, bounded by CHAT_HISTORY_LIMIT', async () => {
    fake.script(MODEL, { text: 'First answer' });
    const first = await testApp.api().post('/chat').send({ user_id: 'talker', message: 'First question' }).expect(200);
    const conversation_id = first.body.conversation_id as string;
    fake.script(MODEL, { text: 'Second answer' });
    await testApp.api().post('/chat').send({ user_id: 'talker', message: 'Second question', conversation_id }).expect(200);
    fake.script(MODEL, { text: 'Third answer' });
    const third = await testApp.api().post('/chat').send({ user_id: 'talker', message: 'Third question', conversation_id }).expect(200);

    expect(third.body.conversation_id).toBe(conversation_id);
    expect(sentMessages(fake).slice(1)).toEqual([
      'user:First question',
      'assistant:First answer',
      'user:Second question',
      'assistant:Second answer',
      'user:Third question',
    ]);
    const stored = await testApp.db.collection('assistant_conversations').findOne({ userId: 'talker', conversationId: conversation_id });
    expect(stored!.messages.map((message: { content: string }) => message.content)).toEqual([
      'Second question',
      'Second answer',
      'Third question',
      'Third answer',
    ]);

    // A new conversation of the same user starts empty.
    fake.script(MODEL, { text: 'Fresh answer' });
    const fresh = await testApp.api().post('/chat').send({ user_id: 'talker', message: 'New topic' }).expect(200);
    expect(fresh.body.conversation_id).not.toBe(conversation_id);
    expect(sentMessages(fake).slice(1)).toEqual(['user:New topic']);
  });

  it("scopes conversations to their owner: the same conversation_id of another user is that user's own", async () => {
    const alice = await testApp.api().post('/admin/api-keys').send({ role: 'user', userId: 'alice' }).expect(201);
    const bob = await testApp.api().post('/admin/api-keys').send({ role: 'user', userId: 'bob' }).expect(201);

    fake.script(MODEL, { text: 'Secret plan for alice' });
    // A user key may leave user_id out: it is filled in with the key's user.
    const mine = await testApp.api(alice.body.key).post('/chat').send({ message: 'My secret', conversation_id: 'conv_045' }).expect(200);
    expect(mine.body.conversation_id).toBe('conv_045');

    fake.script(MODEL, { text: 'Hello bob' });
    await testApp.api(bob.body.key).post('/chat').send({ message: 'Hi', conversation_id: 'conv_045' }).expect(200);
    expect(sentMessages(fake).slice(1)).toEqual(['user:Hi']);

    await testApp.api(bob.body.key).post('/chat').send({ user_id: 'alice', message: 'Hi', conversation_id: 'conv_045' }).expect(403);
    const stored = await testApp.db.collection('assistant_conversations').find({ conversationId: 'conv_045' }).sort({ userId: 1 }).toArray();
    expect(stored.map((conversation) => [conversation.userId, conversation.messages.length])).toEqual([
      ['alice', 2],
      ['bob', 2],
    ]);
  });

  it('takes a JSON body sent as text/plain (what fetch sends for a string body); other routes still answer 415', async () => {
    fake.script(MODEL, { text: 'Plain answer', usage: usage(10, 5) });
    const plain = await request(testApp.http)
      .post('/chat')
      .set('authorization', `Bearer ${testApp.adminKey}`)
      .set('content-type', 'text/plain;charset=UTF-8')
      .send(JSON.stringify({ user_id: 'plain-user', message: 'Hello' }))
      .expect(200);
    expect(plain.body).toMatchObject({ stage: 'response', text: 'Plain answer', token_usage: { total_tokens: 15 } });

    const broken = await request(testApp.http)
      .post('/chat')
      .set('authorization', `Bearer ${testApp.adminKey}`)
      .set('content-type', 'text/plain')
      .send('{"user_id": "plain-user", "message": ')
      .expect(400);
    expect(broken.body).toMatchObject({ statusCode: 400, message: expect.stringContaining('JSON') });

    const elsewhere = await request(testApp.http)
      .post('/api/v1/orcha/chat')
      .set('authorization', `Bearer ${testApp.adminKey}`)
      .set('content-type', 'text/plain')
      .send(JSON.stringify({ user_id: 'plain-user', message: 'Hello' }))
      .expect(415);
    expect(elsewhere.body.message).toMatch(/media type/i);
    expect(fake.requests).toHaveLength(1);
  });

  it('needs an API key like every AI endpoint', async () => {
    await request(testApp.http).post('/chat').send({ user_id: 'u1', message: 'hi' }).expect(401);
  });

  it.each([
    [{ message: 'hi' }, 'user_id'],
    [{ user_id: 'u1' }, 'message'],
    [{ user_id: 'u1', message: '' }, 'message'],
    [{ user_id: 'u1', message: 'hi', conversation_id: 'has spaces' }, 'conversation_id'],
    [{ user_id: 'u1', message: 'hi', conversation_id: '' }, 'conversation_id'],
    [{ user_id: 'u1', message: 'hi', use_rag: 'yes' }, 'use_rag'],
    [{ user_id: 'u1', message: 'hi', stage: 'x' }, 'stage'],
  ])('rejects %j with 400 naming %s, calling no provider', async (body, field) => {
    const response = await testApp.api().post('/chat').send(body).expect(400);
    expect(response.body.fields.map((entry: { field: string }) => entry.field)).toContain(field);
    expect(fake.requests).toHaveLength(0);
  });
});
