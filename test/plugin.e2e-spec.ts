import { PluginService } from '../src/plugin/plugin.service';
import { FakeProviderServer, RAW_BODY_MARKER } from './support/fake-provider.server';
import { createTestApp, TestApp } from './support/test-app';

const PRIMARY = 'primary-model';
const FALLBACK = 'fallback-model';
const API_KEY = 'sk-test-secret-key-123456';

/** A dependency-free project: plain Java, so javac on this machine can really compile it. */
function projectAnswer(name = 'Teleport', source = 'public class Main { public static int answer() { return 42; } }') {
  return JSON.stringify({
    name,
    packageName: 'com.example.teleport',
    mainClass: 'com.example.teleport.Main',
    version: '1.0.0',
    files: [{ path: 'src/main/java/com/example/teleport/Main.java', content: `package com.example.teleport;\n${source}\n` }],
  });
}

const usage = (prompt: number, completion: number) => ({ prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion });

describe(PluginService.name, () => {
  let fake: FakeProviderServer;
  let testApp: TestApp;

  beforeAll(async () => {
    fake = await FakeProviderServer.start();
    testApp = await createTestApp({
      AI_PROVIDER: 'compatible',
      AI_BASE_URL: fake.baseUrl,
      AI_API_KEY: API_KEY,
      AI_PRIMARY_MODEL: PRIMARY,
      AI_FALLBACK_MODEL: FALLBACK,
      AI_TIMEOUT_MS: 2000,
      PLUGIN_BUILD_TOOL: 'javac',
    });
  });

  afterEach(() => fake.reset());

  afterAll(async () => {
    await testApp.close();
    await fake.stop();
  });

  const ledger = (userId: string) => testApp.db.collection('user_token_usage').findOne({ userId });

  describe('POST /plugin/generate', () => {
    it('returns the project and the seed tokenUsage, with totals from the ledger', async () => {
      fake.script(PRIMARY, { text: projectAnswer(), usage: usage(150, 300) });
      const first = await testApp.api()
        .post('/plugin/generate')
        .send({ prompt: 'Create a plugin that teleports players', userId: 'plugin-user', name: 'Teleport', complexity: 7 })
        .expect(200);

      expect(first.body.result).toContain('Generated plugin "Teleport"');
      expect(first.body.pluginProject).toMatchObject({ name: 'Teleport', mainClass: 'com.example.teleport.Main' });
      expect(first.body).toMatchObject({ model: PRIMARY, provider: 'compatible' });
      expect(first.body.tokenUsage).toEqual({
        promptTokens: 150,
        completionTokens: 300,
        totalTokens: 450,
        requestCount: 1,
        tokensUsedThisRequest: 450,
        trackingEnabled: true,
      });
      expect(Object.keys(first.body.tokenUsage)).toEqual(
        expect.arrayContaining(['promptTokens', 'completionTokens', 'totalTokens', 'requestCount', 'tokensUsedThisRequest']),
      );

      fake.script(PRIMARY, { text: projectAnswer(), usage: usage(100, 20) });
      const second = await testApp.api()
        .post('/plugin/generate')
        .send({ prompt: 'Another one', userId: 'plugin-user', name: 'Teleport' })
        .expect(200);
      expect(second.body.tokenUsage).toMatchObject({ totalTokens: 570, requestCount: 2, tokensUsedThisRequest: 120 });

      const stored = await ledger('plugin-user');
      expect(stored).toMatchObject({ totalTokens: 570, totalPromptTokens: 250, totalCompletionTokens: 320, requestCount: 2 });
      const [received] = fake.requests;
      expect(received.headers.authorization).toBe(`Bearer ${API_KEY}`);
      expect(received.body?.response_format).toEqual({ type: 'json_object' });
    });

    it('compiles when autoCompile is true', async () => {
      fake.script(PRIMARY, { text: projectAnswer(), usage: usage(10, 10) });
      const response = await testApp.api()
        .post('/plugin/generate')
        .send({ prompt: 'Compile me', userId: 'compile-user', autoCompile: true })
        .expect(200);
      expect(response.body.compilation).toMatchObject({ success: true, tool: 'javac' });
      expect(response.body.result).toContain('compilation succeeded');
    });

    it('repairs one malformed answer and counts both calls', async () => {
      fake.script(PRIMARY, { text: JSON.stringify({ name: 'Teleport', files: [] }), usage: usage(100, 5) }, { text: projectAnswer(), usage: usage(200, 50) });
      const response = await testApp.api()
        .post('/plugin/generate')
        .send({ prompt: 'Needs a repair', userId: 'repair-user', name: 'Teleport' })
        .expect(200);
      expect(response.body.tokenUsage).toMatchObject({ tokensUsedThisRequest: 355, requestCount: 2, totalTokens: 355 });
      const repairRequest = fake.requests[1];
      const lastMessage = (repairRequest.body?.messages as Array<{ content: string }>).at(-1)!.content;
      expect(lastMessage).toContain('could not be used');
    });

    it('answers 502 when the repaired answer still does not parse, with both calls tracked', async () => {
      fake.script(PRIMARY, { text: '{"name":"Teleport"}', usage: usage(40, 2) }, { text: '{"name":"Teleport","files":[]}', usage: usage(60, 3) });
      const response = await testApp.api()
        .post('/plugin/generate')
        .send({ prompt: 'Hopeless', userId: 'unparseable-user', name: 'Teleport' })
        .expect(502);
      expect(response.body.message).toContain(`primary model ${PRIMARY} (repair) returned an unusable answer`);
      expect(response.body.tokenUsage).toMatchObject({ tokensUsedThisRequest: 105, requestCount: 2 });
      expect(response.body.token_usage).toMatchObject({ prompt_tokens: 100, completion_tokens: 5, total_tokens: 105 });
      expect(fake.requests.map((received) => received.model)).toEqual([PRIMARY, PRIMARY]);
      expect(await ledger('unparseable-user')).toMatchObject({ totalTokens: 105, requestCount: 2 });
    });

    it('falls back to the second model when the primary fails with a 500', async () => {
      fake.script(PRIMARY, { status: 500 });
      fake.script(FALLBACK, { text: projectAnswer(), usage: usage(70, 30) });
      const response = await testApp.api()
        .post('/plugin/generate')
        .send({ prompt: 'Fallback please', userId: 'fallback-user' })
        .expect(200);
      expect(response.body.model).toBe(FALLBACK);
      expect(response.body.tokenUsage).toMatchObject({ tokensUsedThisRequest: 100, requestCount: 1 });
      expect(fake.requests.map((received) => received.model)).toEqual([PRIMARY, FALLBACK]);
    });

    it('answers 502 when both models fail, leaking neither key nor provider body', async () => {
      fake.script(PRIMARY, { status: 500 });
      fake.script(FALLBACK, { status: 503 });
      const response = await testApp.api()
        .post('/plugin/generate')
        .send({ prompt: 'Doomed', userId: 'doomed-user' })
        .expect(502);
      const text = JSON.stringify(response.body);
      expect(text).not.toContain(API_KEY);
      expect(text).not.toContain(RAW_BODY_MARKER);
      expect(response.body.message).toMatch(/primary|fallback/i);
      expect(await ledger('doomed-user')).toBeNull();
    });

    it('still returns the plugin with trackingEnabled false when the ledger write fails', async () => {
      // A ledger document the $inc cannot apply to: a real write failure from the database.
      await testApp.db.collection('user_token_usage').insertOne({ userId: 'broken-ledger', totalTokens: 'not a number' });
      fake.script(PRIMARY, { text: projectAnswer(), usage: usage(5, 5) });
      const response = await testApp.api()
        .post('/plugin/generate')
        .send({ prompt: 'Ledger is broken', userId: 'broken-ledger' })
        .expect(200);
      expect(response.body.pluginProject.name).toBe('Teleport');
      expect(response.body.tokenUsage).toMatchObject({ trackingEnabled: false, tokensUsedThisRequest: 10 });
    });

    it.each([
      [{ userId: 'u1' }, 'prompt'],
      [{ prompt: 'x' }, 'userId'],
      [{ prompt: 'x', userId: 'u1', complexity: 11 }, 'complexity'],
      [{ prompt: 'x', userId: 'u1', complexity: 2.5 }, 'complexity'],
      [{ prompt: 'x', userId: 'u1', autoCompile: 'yes' }, 'autoCompile'],
      [{ prompt: 'x', userId: 'u1', name: '../etc' }, 'name'],
      [{ prompt: 'x', userId: { $ne: null } }, 'userId'],
      [{ prompt: 'x', userId: 'u1', extra: true }, 'extra'],
    ])('rejects %j with 400 naming %s', async (body, field) => {
      const response = await testApp.api().post('/plugin/generate').send(body).expect(400);
      expect(response.body.message).toContain(field);
      expect(fake.requests).toHaveLength(0);
    });
  });

  describe('POST /plugin/generate-only and /plugin/generate-and-compile', () => {
    it('tracks nothing and omits tokenUsage without a userId', async () => {
      fake.script(PRIMARY, { text: projectAnswer(), usage: usage(10, 10) });
      const response = await testApp.api().post('/plugin/generate-only').send({ prompt: 'Anonymous' }).expect(200);
      expect(response.body).not.toHaveProperty('tokenUsage');
      expect(response.body).not.toHaveProperty('compilation');
    });

    it('tracks when a userId is given', async () => {
      fake.script(PRIMARY, { text: projectAnswer(), usage: usage(10, 10) });
      const response = await testApp.api().post('/plugin/generate-only').send({ prompt: 'Mine', userId: 'only-user' }).expect(200);
      expect(response.body.tokenUsage).toMatchObject({ tokensUsedThisRequest: 20, requestCount: 1 });
    });

    it('always compiles on generate-and-compile, reporting compiler errors honestly', async () => {
      fake.script(PRIMARY, { text: projectAnswer('Teleport', 'public class Main { int broken = ; }'), usage: usage(10, 10) });
      const response = await testApp.api().post('/plugin/generate-and-compile').send({ prompt: 'Broken code' }).expect(200);
      expect(response.body.compilation.success).toBe(false);
      expect(response.body.compilation.log).toContain('Main.java');
      expect(response.body.result).toContain('compilation failed');
    });
  });

  describe('POST /ai/generate-code', () => {
    it('enhances the prompt, generates, and reports both calls in tokenUsage', async () => {
      fake.script(PRIMARY, { text: 'A /tp command with permission teleport.use', usage: usage(30, 12) }, { text: projectAnswer(), usage: usage(120, 80) });
      const response = await testApp.api()
        .post('/ai/generate-code')
        .send({ prompt: 'Create a teleportation system', pluginName: 'TeleportPlugin', userId: 'code-user' })
        .expect(200);
      expect(response.body.enhancedPrompt).toBe('A /tp command with permission teleport.use');
      expect(response.body.pluginProject.mainClass).toBe('com.example.teleport.Main');
      expect(response.body.tokenUsage).toMatchObject({ tokensUsedThisRequest: 242, requestCount: 2, totalTokens: 242 });
      const generation = fake.requests[1].body?.messages as Array<{ content: string }>;
      expect(generation.at(-1)!.content).toContain('A /tp command with permission teleport.use');
      const stored = await ledger('code-user');
      expect(Object.keys(stored!.dailyUsage[Object.keys(stored!.dailyUsage)[0]].operations).sort()).toEqual(['code_generation', 'prompt_enhancement']);
    });

    it('omits tokenUsage without a userId', async () => {
      fake.script(PRIMARY, { text: 'spec', usage: usage(3, 3) }, { text: projectAnswer(), usage: usage(4, 4) });
      const response = await testApp.api()
        .post('/ai/generate-code')
        .send({ prompt: 'Anonymous code', pluginName: 'TeleportPlugin' })
        .expect(200);
      expect(response.body).not.toHaveProperty('tokenUsage');
    });

    it('rejects a missing pluginName', async () => {
      const response = await testApp.api().post('/ai/generate-code').send({ prompt: 'x' }).expect(400);
      expect(response.body.message).toContain('pluginName');
    });
  });
});
