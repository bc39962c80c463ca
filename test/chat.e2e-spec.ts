import { ChatService } from '../src/chat/chat.service';
import { FakeProviderServer } from './support/fake-provider.server';
import { createTestApp, TestApp } from './support/test-app';

const MODEL = 'chat-model';
const usage = (prompt: number, completion: number) => ({ prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion });

describe(ChatService.name, () => {
  let fake: FakeProviderServer;
  let testApp: TestApp;

  beforeAll(async () => {
    fake = await FakeProviderServer.start();
    testApp = await createTestApp({
      AI_PROVIDER: 'compatible',
      AI_BASE_URL: fake.baseUrl,
      AI_API_KEY: 'sk-chat-test-key',
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

  it('classifies, answers, and tracks each call under its own operation type', async () => {
    fake.script(MODEL, { text: '{"type":"modification"}', usage: usage(60, 5) }, { text: 'Add a CommandExecutor...', usage: usage(15, 10) });
    const response = await testApp.api()
      .post('/chat/message')
      .send({ message: 'Add a /home command', username: 'chat-user', pluginName: 'MyPlugin' })
      .expect(200);

    expect(response.body).toMatchObject({
      success: true,
      type: 'modification',
      message: 'Add a CommandExecutor...',
      username: 'chat-user',
      pluginName: 'MyPlugin',
      tokenUsage: { promptTokens: 75, completionTokens: 15, totalTokens: 90, requestCount: 2, tokensUsedThisRequest: 90, trackingEnabled: true },
    });
    const stored = await testApp.db.collection('user_token_usage').findOne({ userId: 'chat-user' });
    const [day] = Object.values(stored!.dailyUsage) as Array<{ operations: Record<string, number> }>;
    expect(day.operations).toEqual({ chat_intent: 1, chat_modification: 1 });
    expect(stored!.recentSessions.map((session: { operationType: string }) => session.operationType)).toEqual(['chat_intent', 'chat_modification']);

    // The same tracking call wrote one usage event per provider call, with the question.
    const events = await testApp.db.collection('usage_events').find({ user_id: 'chat-user' }).sort({ timestamp: 1 }).toArray();
    expect(events.map((event) => event.operation_type).sort()).toEqual(['chat_intent', 'chat_modification']);
    expect(events.every((event) => event.query === 'Add a /home command')).toBe(true);
    expect(events.reduce((sum, event) => sum + event.total_tokens, 0)).toBe(90);
  });

  it('answers questions as info and sends the bounded history with the next message', async () => {
    fake.script(MODEL, { text: '{"type":"info"}' }, { text: 'First answer' });
    await testApp.api().post('/chat/message').send({ message: 'What is plugin.yml?', username: 'history-user' }).expect(200);
    fake.script(MODEL, { text: '{"type":"info"}' }, { text: 'Second answer' });
    await testApp.api().post('/chat/message').send({ message: 'And api-version?', username: 'history-user' }).expect(200);
    fake.script(MODEL, { text: '{"type":"info"}' }, { text: 'Third answer' });
    const third = await testApp.api().post('/chat/message').send({ message: 'Thanks. One more?', username: 'history-user' }).expect(200);

    expect(third.body).toMatchObject({ type: 'info', pluginName: null });
    const sent = (fake.requests.at(-1)!.body?.messages as Array<{ role: string; content: string }>).map(
      (message) => `${message.role}:${message.content}`,
    );
    expect(sent.slice(1)).toEqual([
      'user:What is plugin.yml?',
      'assistant:First answer',
      'user:And api-version?',
      'assistant:Second answer',
      'user:Thanks. One more?',
    ]);
    // CHAT_HISTORY_LIMIT=4: the stored history now drops the oldest exchange.
    const conversation = await testApp.db.collection('chat_conversations').findOne({ username: 'history-user' });
    expect(conversation!.messages.map((message: { content: string }) => message.content)).toEqual([
      'And api-version?',
      'Second answer',
      'Thanks. One more?',
      'Third answer',
    ]);
  });

  it.each([
    [{ message: 'hi' }, 'username'],
    [{ username: 'u1' }, 'message'],
    [{ message: '', username: 'u1' }, 'message'],
    [{ message: 'hi', username: 'bad user' }, 'username'],
    [{ message: 'hi', username: 'u1', pluginName: 'no spaces allowed' }, 'pluginName'],
    [{ message: 'hi', username: 'u1', stage: 'x' }, 'stage'],
  ])('rejects %j with 400 naming %s', async (body, field) => {
    const response = await testApp.api().post('/chat/message').send(body).expect(400);
    expect(response.body.message).toContain(field);
  });
});
