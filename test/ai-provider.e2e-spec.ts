import { HttpException } from '@nestjs/common';
import { MongooseModule } from '@nestjs/mongoose';
import { Test, TestingModule } from '@nestjs/testing';
import type { Db } from 'mongodb';
import { AiProviderCallError, AiProviderException, AiRequestAbortedException, AiTimeoutException, AiUnavailableException } from '../src/ai/ai-errors';
import type { CompletionRequest, ProviderStreamEvent } from '../src/ai/ai-provider.interface';
import { AiModule } from '../src/ai/ai.module';
import { AiService, AiStreamEvent } from '../src/ai/ai.service';
import { OpenAiCompatibleProvider, OpenAiCompatibleSettings } from '../src/ai/openai-compatible.provider';
import { AppConfig, validateConfig } from '../src/config/app-config';
import { AppConfigModule } from '../src/config/app-config.module';
import { FakeProviderServer, RAW_BODY_MARKER } from './support/fake-provider.server';
import { startTestDatabase, testMongoKind } from './support/test-database';
import { RedisModule } from '../src/redis/redis.module';

const API_KEY = 'sk-test-0123456789-very-secret';
const PRIMARY = 'openai/gpt-4o-mini';
const FALLBACK = 'openai/gpt-4o';
const TIMEOUT_MS = 400;

const request: CompletionRequest = {
  messages: [
    { role: 'system', content: 'You are a concise assistant.' },
    { role: 'user', content: 'Explain token ledgers in one sentence.' },
  ],
};

async function collect<T>(iterable: AsyncIterable<T>): Promise<T[]> {
  const items: T[] = [];
  for await (const item of iterable) items.push(item);
  return items;
}

async function failureOf(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error('expected a failure');
}

/** gpt-4o-mini at $0.15 / $0.60 per 1M tokens, in integer maths, half-up. */
const miniCost = (prompt: number, completion: number) => Math.round((prompt * 15 + completion * 60) / 100);

// Every provider behaviour holds on both transports under the SDK (AI_HTTP_TRANSPORT).
describe.each(['node', 'fetch'] as const)(`${OpenAiCompatibleProvider.name} over the %s transport`, (transport) => {
  let fake: FakeProviderServer;
  const providerFor = (overrides: Partial<OpenAiCompatibleSettings> = {}) =>
    new OpenAiCompatibleProvider({ kind: 'openrouter', baseUrl: fake.baseUrl, apiKey: API_KEY, timeoutMs: TIMEOUT_MS, transport, ...overrides });

  beforeAll(async () => {
    fake = await FakeProviderServer.start();
  });
  afterEach(async () => {
    await fake.waitForIdle();
    fake.reset();
  });
  afterAll(() => fake.stop());

  it('sends the request as OpenAI expects and reads usage incl. OpenRouter cost, cached and reasoning tokens', async () => {
    fake.script(PRIMARY, { text: 'A ledger counts tokens.', cost: 0.0012, cachedTokens: 5, reasoningTokens: 3, model: 'openai/gpt-4o-mini-2024-07-18' });
    const result = await providerFor().complete(PRIMARY, { ...request, maxTokens: 50, temperature: 0.2, responseFormat: 'json_object' });

    const expected = fake.usageFor(PRIMARY, request.messages, 'A ledger counts tokens.');
    expect(result).toMatchObject({
      text: 'A ledger counts tokens.',
      model: 'openai/gpt-4o-mini-2024-07-18',
      provider: 'openrouter',
      finishReason: 'stop',
      usage: {
        promptTokens: expected.prompt_tokens,
        completionTokens: expected.completion_tokens,
        totalTokens: expected.total_tokens,
        cachedTokens: 5,
        reasoningTokens: 3,
        costUsd: 0.0012,
      },
    });
    expect(result.latencyMs).toBeGreaterThanOrEqual(0);
    const [sent] = fake.requests;
    expect(sent.headers.authorization).toBe(`Bearer ${API_KEY}`);
    expect(sent.body).toEqual({
      model: PRIMARY,
      messages: request.messages,
      max_tokens: 50,
      temperature: 0.2,
      response_format: { type: 'json_object' },
    });
  });

  it('talks to OpenAI itself with bare model names and max_completion_tokens', async () => {
    await providerFor({ kind: 'openai' }).complete(PRIMARY, { ...request, maxTokens: 20 });
    expect(fake.requests[0].body).toMatchObject({ model: 'gpt-4o-mini', max_completion_tokens: 20 });
    expect(fake.requests[0].body).not.toHaveProperty('max_tokens');
  });

  it('reports null usage when the provider sends none', async () => {
    fake.script(PRIMARY, { omitUsage: true });
    expect((await providerFor().complete(PRIMARY, request)).usage).toBeNull();
  });

  it.each([
    [500, 'server_error', true],
    [502, 'server_error', true],
    [429, 'rate_limited', true],
    [400, 'rejected', false],
    [404, 'rejected', false],
    [422, 'rejected', false],
    [401, 'auth', false],
    [403, 'auth', false],
  ])('classifies HTTP %d as %s (retryable %s) without quoting the body', async (status, kind, retryable) => {
    fake.script(PRIMARY, { status });
    const error = (await failureOf(providerFor().complete(PRIMARY, request))) as AiProviderCallError;
    expect(error).toBeInstanceOf(AiProviderCallError);
    expect(error).toMatchObject({ kind, retryable, status, detail: `returned HTTP ${status}` });
    expect(error.detail).not.toContain(RAW_BODY_MARKER);
  });

  it('classifies an OpenRouter 200 carrying an error body', async () => {
    fake.script(PRIMARY, { body: { error: { code: 502, message: `upstream died ${RAW_BODY_MARKER}` } } });
    const error = (await failureOf(providerFor().complete(PRIMARY, request))) as AiProviderCallError;
    expect(error).toMatchObject({ kind: 'server_error', detail: 'returned HTTP 502' });
  });

  it('times out on a slow answer and closes the upstream request', async () => {
    fake.script(PRIMARY, { delayMs: 5_000 });
    const started = Date.now();
    const error = (await failureOf(providerFor().complete(PRIMARY, request))) as AiProviderCallError;
    expect(error).toMatchObject({ kind: 'timeout', detail: `timed out after ${TIMEOUT_MS} ms`, retryable: true });
    expect(Date.now() - started).toBeLessThan(2_000);
    await fake.waitForIdle();
  });

  it('reports a reset connection as a retryable network failure', async () => {
    fake.script(PRIMARY, { resetMidStream: true });
    const error = (await failureOf(providerFor().complete(PRIMARY, request))) as AiProviderCallError;
    expect(error.kind).toBe('network');
    expect(error.retryable).toBe(true);
  });

  it('reports a refused connection as a network failure', async () => {
    const closed = await FakeProviderServer.start();
    const baseUrl = closed.baseUrl;
    await closed.stop();
    const error = (await failureOf(providerFor({ baseUrl }).complete(PRIMARY, request))) as AiProviderCallError;
    expect(error).toMatchObject({ kind: 'network', detail: 'connection failed (ECONNREFUSED)' });
  });

  it('streams deltas and takes usage from the final chunk', async () => {
    fake.script(PRIMARY, { text: 'Tokens in, tokens out.', cost: 0.000_02 });
    const events = await collect(providerFor().stream(PRIMARY, request));
    const deltas = events.filter((event) => event.type === 'delta').map((event) => (event as { text: string }).text);
    const done = events[events.length - 1];
    expect(deltas.join('')).toBe('Tokens in, tokens out.');
    const expected = fake.usageFor(PRIMARY, request.messages, 'Tokens in, tokens out.');
    expect(done).toMatchObject({
      type: 'done',
      finishReason: 'stop',
      usage: { promptTokens: expected.prompt_tokens, completionTokens: expected.completion_tokens, costUsd: 0.000_02 },
    });
    expect(fake.requests[0].body).toMatchObject({ stream: true, stream_options: { include_usage: true } });
  });

  it('reports a cut stream with what had arrived', async () => {
    fake.script(PRIMARY, { text: 'one two three four five', resetMidStream: true, resetAfterChunks: 2 });
    const received: ProviderStreamEvent[] = [];
    const error = (await failureOf(
      (async () => {
        for await (const event of providerFor().stream(PRIMARY, request)) received.push(event);
      })(),
    )) as AiProviderCallError;
    expect(error.kind).toBe('network');
    expect(error.partial).toMatchObject({ text: 'one two', usage: null });
    expect(received).toHaveLength(2);
  });

  it('times out a stream that goes quiet, keeping the partial text', async () => {
    fake.script(PRIMARY, { text: 'slow and then silent', chunkDelayMs: 5_000 });
    const error = (await failureOf(collect(providerFor().stream(PRIMARY, request)))) as AiProviderCallError;
    expect(error).toMatchObject({ kind: 'timeout', detail: `timed out after ${TIMEOUT_MS} ms` });
    expect(error.partial).toMatchObject({ text: '' });
    await fake.waitForIdle();
  });

  it('aborts the upstream stream when the consumer stops or the caller aborts', async () => {
    fake.script(PRIMARY, { text: 'a b c d e f g h', chunkDelayMs: 30 }, { text: 'a b c d e f g h', chunkDelayMs: 30 });
    for await (const event of providerFor().stream(PRIMARY, request)) {
      if (event.type === 'delta') break;
    }
    await fake.waitForIdle();

    const controller = new AbortController();
    const error = (await failureOf(
      (async () => {
        for await (const event of providerFor().stream(PRIMARY, request, controller.signal)) {
          if (event.type === 'delta') controller.abort();
        }
      })(),
    )) as AiProviderCallError;
    expect(error.kind).toBe('aborted');
    expect(error.partial?.text).toBe('a');
    await fake.waitForIdle();
  });

  it('embeds with float encoding and reads usage', async () => {
    const result = await providerFor().embed('openai/text-embedding-3-small', ['alpha beta', 'gamma']);
    expect(result.vectors).toHaveLength(2);
    expect(result.vectors[0]).toHaveLength(1536);
    expect(result.usage).toEqual({ promptTokens: 3, totalTokens: 3 });
    expect(fake.requests[0].body).toMatchObject({ encoding_format: 'float', input: ['alpha beta', 'gamma'] });
  });
});

describe(AiService.name, () => {
  let fake: FakeProviderServer;
  let database: Awaited<ReturnType<typeof startTestDatabase>>;
  let db: Db;
  let moduleRef: TestingModule;
  let ai: AiService;
  let config: AppConfig;
  let users = 0;
  const nextUser = () => `ai-user-${++users}`;

  const ledgerOf = (userId: string) => db.collection('user_token_usage').findOne({ userId });

  beforeAll(async () => {
    fake = await FakeProviderServer.start();
    database = await startTestDatabase('ai');
    db = database.client.db(database.dbName);
    config = validateConfig({
      NODE_ENV: 'test',
      AI_BASE_URL: fake.baseUrl,
      AI_API_KEY: API_KEY,
      AI_PRIMARY_MODEL: PRIMARY,
      AI_FALLBACK_MODEL: FALLBACK,
      AI_TIMEOUT_MS: TIMEOUT_MS,
      MONGODB_URI: database.uri,
      MONGODB_DB_NAME: database.dbName,
      REDIS_KEY_PREFIX: `test:${database.dbName}:`,
    });
    moduleRef = await Test.createTestingModule({
      imports: [
        AppConfigModule.forRoot(config),
        RedisModule,
        MongooseModule.forRoot(database.uri, {
          dbName: database.dbName,
          directConnection: testMongoKind() !== 'external' ? true : undefined,
        }),
        AiModule,
      ],
    })
      .setLogger({ log: () => undefined, warn: () => undefined, error: () => undefined, debug: () => undefined, verbose: () => undefined })
      .compile();
    await moduleRef.init();
    ai = moduleRef.get(AiService);
  });
  afterEach(async () => {
    await fake.waitForIdle();
    fake.reset();
  });
  afterAll(async () => {
    await moduleRef?.close();
    await database?.stop();
    await fake?.stop();
  });

  describe('complete', () => {
    it('answers from the primary, prices from the catalog and tracks one record', async () => {
      const userId = nextUser();
      const result = await ai.complete(request, { userId, operationType: 'chat_completion', requestId: 'req-1' });

      const expected = fake.usageFor(PRIMARY, request.messages, result.text);
      expect(result).toMatchObject({
        model: PRIMARY,
        provider: 'compatible',
        usage: { promptTokens: expected.prompt_tokens, completionTokens: expected.completion_tokens, estimated: false },
        costMicros: miniCost(expected.prompt_tokens, expected.completion_tokens),
        costSource: 'catalog',
        attempts: [{ role: 'primary', model: PRIMARY, outcome: 'success', billed: true }],
      });
      expect(result.tracked).toHaveLength(1);
      expect(result.tracked[0]).toMatchObject({
        trackingEnabled: true,
        delta: { promptTokens: expected.prompt_tokens, completionTokens: expected.completion_tokens, costMicros: result.costMicros, requestCount: 1 },
      });
      // No max_tokens given and the user has limits: the call holds (and asks for) AI_RESERVE_COMPLETION_TOKENS.
      expect(fake.requests[0].body).toMatchObject({ model: PRIMARY, max_tokens: Math.min(config.AI_MAX_TOKENS, config.AI_RESERVE_COMPLETION_TOKENS) });

      const stored = await ledgerOf(userId);
      expect(stored).toMatchObject({ totalPromptTokens: expected.prompt_tokens, totalCostMicros: result.costMicros, requestCount: 1 });
      expect(stored!.recentSessions[0]).toMatchObject({
        operationType: 'chat_completion',
        model: PRIMARY,
        provider: 'compatible',
        costSource: 'catalog',
        estimated: false,
        success: true,
        requestId: 'req-1',
      });
    });

    it('uses the provider-reported cost over the catalog', async () => {
      fake.script(PRIMARY, { cost: 0.004_321 });
      const result = await ai.complete(request, { userId: nextUser(), operationType: 'chat_info' });
      expect(result).toMatchObject({ costMicros: 4_321, costSource: 'provider' });
    });

    it('passes cached and reasoning tokens through to the price', async () => {
      fake.script(PRIMARY, { text: 'ok', usage: { prompt_tokens: 1_000, completion_tokens: 100, total_tokens: 1_100 }, cachedTokens: 400 });
      const result = await ai.complete(request, { userId: nextUser(), operationType: 'chat_info' });
      expect(result.usage).toMatchObject({ promptTokens: 1_000, completionTokens: 100, cachedTokens: 400, reasoningTokens: 0 });
      expect(result.costMicros).toBe(Math.round(600 * 0.15 + 400 * 0.075 + 100 * 0.6)); // 180
    });

    it('estimates with the tokenizer when the provider sends no usage, and flags it', async () => {
      const userId = nextUser();
      fake.script(PRIMARY, { omitUsage: true, text: 'Counted by us.' });
      const result = await ai.complete(request, { userId, operationType: 'chat_info' });
      const counted = fake.usageFor(PRIMARY, request.messages, 'Counted by us.');
      expect(result.usage).toEqual({
        promptTokens: counted.prompt_tokens,
        completionTokens: counted.completion_tokens,
        totalTokens: counted.total_tokens,
        estimated: true,
      });
      expect((await ledgerOf(userId))!.recentSessions[0]).toMatchObject({ estimated: true, totalTokens: counted.total_tokens });
    });

    it.each([
      ['HTTP 500', { status: 500 }],
      ['HTTP 503', { status: 503 }],
      ['HTTP 429', { status: 429 }],
      ['a timeout', { delayMs: 5_000 }],
      ['a reset connection', { resetMidStream: true }],
    ])('falls back when the primary fails with %s', async (_name, primaryFailure) => {
      const userId = nextUser();
      fake.script(PRIMARY, primaryFailure);
      const result = await ai.complete(request, { userId, operationType: 'chat_completion' });

      expect(fake.requests.map((sent) => sent.model)).toEqual([PRIMARY, FALLBACK]);
      expect(result.model).toBe(FALLBACK);
      expect(result.attempts.map((attempt) => [attempt.role, attempt.billed])).toEqual([
        ['primary', false],
        ['fallback', true],
      ]);
      // gpt-4o at the seed price of $5 / $15 per 1M tokens.
      const expected = fake.usageFor(FALLBACK, request.messages, result.text);
      expect(result.costMicros).toBe(Math.round(expected.prompt_tokens * 2.5 + expected.completion_tokens * 10));
      expect(result.tracked).toHaveLength(1);
      expect(await ledgerOf(userId)).toMatchObject({ requestCount: 1 });
    });

    it.each([
      [400, AiProviderException, 502],
      [404, AiProviderException, 502],
      [422, AiProviderException, 502],
      [401, AiUnavailableException, 503],
      [403, AiUnavailableException, 503],
    ])('does not retry a non-retryable HTTP %d and answers %p', async (status, type, httpStatus) => {
      fake.script(PRIMARY, { status });
      const error = (await failureOf(ai.complete(request, { userId: nextUser(), operationType: 'chat_completion' }))) as HttpException;
      expect(fake.requests).toHaveLength(1);
      expect(error).toBeInstanceOf(type);
      expect(error.getStatus()).toBe(httpStatus);
      expect(error.getResponse()).toMatchObject({ message: `AI provider failed: primary model ${PRIMARY} returned HTTP ${status}` });
    });

    it('answers 502 when both fail, naming both attempts without the key or the raw body', async () => {
      fake.script(PRIMARY, { delayMs: 5_000 });
      fake.script(FALLBACK, { status: 502 });
      const error = (await failureOf(ai.complete(request, { userId: nextUser(), operationType: 'chat_completion' }))) as HttpException;

      expect(error).toBeInstanceOf(AiProviderException);
      expect(error.getStatus()).toBe(502);
      const body = error.getResponse() as { message: string };
      expect(body.message).toBe(
        `AI provider failed: primary model ${PRIMARY} timed out after ${TIMEOUT_MS} ms; fallback model ${FALLBACK} returned HTTP 502`,
      );
      const serialised = JSON.stringify(body);
      expect(serialised).not.toContain(API_KEY);
      expect(serialised).not.toContain(RAW_BODY_MARKER);
    });

    it('answers 504 when both time out, and 503 when both are rate limited', async () => {
      fake.script(PRIMARY, { delayMs: 5_000 });
      fake.script(FALLBACK, { delayMs: 5_000 });
      const timeout = await failureOf(ai.complete(request, { operationType: 'chat_completion' }));
      expect(timeout).toBeInstanceOf(AiTimeoutException);
      expect((timeout as HttpException).getStatus()).toBe(504);

      fake.script(PRIMARY, { status: 429 });
      fake.script(FALLBACK, { status: 429 });
      const limited = await failureOf(ai.complete(request, { operationType: 'chat_completion' }));
      expect(limited).toBeInstanceOf(AiUnavailableException);
      expect((limited as HttpException).getStatus()).toBe(503);
    });

    it('repairs a billed but unusable answer on the same model, never the fallback', async () => {
      const userId = nextUser();
      fake.script(PRIMARY, { text: '{"name": "truncat', finishReason: 'length' }, { text: '{"name": "complete"}' });
      const result = await ai.complete({ ...request, responseFormat: 'json_object' }, { userId, operationType: 'plugin_generation' });

      expect(result.text).toBe('{"name": "complete"}');
      expect(result.json).toEqual({ name: 'complete' });
      expect(result.attempts.map((attempt) => [attempt.model, attempt.outcome, attempt.billed, attempt.repair ?? false])).toEqual([
        [PRIMARY, 'invalid_answer', true, false],
        [PRIMARY, 'success', true, true],
      ]);
      expect(fake.requests.map((received) => received.model)).toEqual([PRIMARY, PRIMARY]);
      const repairMessages = fake.requests[1].body!.messages as { role: string; content: string }[];
      expect(repairMessages.at(-2)).toEqual({ role: 'assistant', content: '{"name": "truncat' });
      expect(repairMessages.at(-1)!.content).toContain('JSON answer truncated at the token limit');
      expect(result.tracked).toHaveLength(2);
      const stored = await ledgerOf(userId);
      expect(stored).toMatchObject({ requestCount: 2 });
      expect(stored!.recentSessions.map((session: { model: string; success: boolean }) => [session.model, session.success])).toEqual([
        [PRIMARY, false],
        [PRIMARY, true],
      ]);
      expect(stored!.recentSessions[0].errorMessage).toContain('JSON answer truncated at the token limit');
    });

    it("applies the feature's validate hook: one repair on the same model, then 502 with both calls tracked", async () => {
      const userId = nextUser();
      const error = await failureOf(
        ai.complete(request, { userId, operationType: 'code_generation', validate: (text) => (text.includes('```') ? null : 'no code block') }),
      );
      expect(error).toBeInstanceOf(AiProviderException);
      expect((error as HttpException).getResponse()).toMatchObject({
        message: `AI provider failed: primary model ${PRIMARY} returned an unusable answer (no code block); primary model ${PRIMARY} (repair) returned an unusable answer (no code block)`,
      });
      expect(fake.requests.map((received) => received.model)).toEqual([PRIMARY, PRIMARY]);
      expect(await ledgerOf(userId)).toMatchObject({ requestCount: 2 });
    });

    it('tracks nothing without a userId', async () => {
      const result = await ai.complete(request, { operationType: 'chat_completion' });
      expect(result.tracked).toEqual([]);
      expect(result.costMicros).toBeGreaterThan(0);
    });

    it('still answers when the ledger write fails, reporting it in tracked', async () => {
      const result = await ai.complete(request, { userId: 'not a valid user id!', operationType: 'chat_completion' });
      expect(result.text).toBeTruthy();
      expect(result.tracked).toEqual([expect.objectContaining({ trackingEnabled: false, error: expect.stringContaining('userId must match') })]);
    });

    it('answers 499 when the caller aborts', async () => {
      fake.script(PRIMARY, { delayMs: 5_000 });
      const controller = new AbortController();
      setTimeout(() => controller.abort(), 50);
      const error = await failureOf(ai.complete(request, { operationType: 'chat_completion', signal: controller.signal }));
      expect(error).toBeInstanceOf(AiRequestAbortedException);
      expect(fake.requests).toHaveLength(1);
    });
  });

  describe('stream', () => {
    const textOf = (events: AiStreamEvent[]) => events.map((event) => (event.type === 'delta' ? event.text : '')).join('');

    it('streams deltas, then a done event priced from the final usage chunk, tracked once', async () => {
      const userId = nextUser();
      fake.script(PRIMARY, { text: 'Streaming is fun to count.' });
      const events = await collect(ai.stream(request, { userId, operationType: 'rag_streaming' }));
      const done = events[events.length - 1];

      expect(textOf(events)).toBe('Streaming is fun to count.');
      expect(done.type).toBe('done');
      const result = (done as Extract<AiStreamEvent, { type: 'done' }>).result;
      const expected = fake.usageFor(PRIMARY, request.messages, 'Streaming is fun to count.');
      expect(result).toMatchObject({
        text: 'Streaming is fun to count.',
        usage: { promptTokens: expected.prompt_tokens, completionTokens: expected.completion_tokens, estimated: false },
        costMicros: miniCost(expected.prompt_tokens, expected.completion_tokens),
      });
      expect(result.tracked).toHaveLength(1);
      expect(await ledgerOf(userId)).toMatchObject({ requestCount: 1, totalTokens: expected.total_tokens });
    });

    it('falls back before the first delta', async () => {
      fake.script(PRIMARY, { status: 500 });
      fake.script(FALLBACK, { text: 'from the fallback' });
      const events = await collect(ai.stream(request, { userId: nextUser(), operationType: 'rag_streaming' }));
      expect(textOf(events)).toBe('from the fallback');
      expect(fake.requests.map((sent) => sent.model)).toEqual([PRIMARY, FALLBACK]);
    });

    it('tracks a cut stream as an estimated failure and does not splice in the fallback', async () => {
      const userId = nextUser();
      fake.script(PRIMARY, { text: 'one two three four five', resetMidStream: true, resetAfterChunks: 2 });
      const received: AiStreamEvent[] = [];
      const error = await failureOf(
        (async () => {
          for await (const event of ai.stream(request, { userId, operationType: 'rag_streaming' })) received.push(event);
        })(),
      );

      expect(textOf(received)).toBe('one two');
      expect(error).toBeInstanceOf(AiProviderException);
      expect(fake.requests).toHaveLength(1);
      const counted = fake.usageFor(PRIMARY, request.messages, 'one two');
      const stored = await ledgerOf(userId);
      expect(stored).toMatchObject({ requestCount: 1, totalPromptTokens: counted.prompt_tokens, totalCompletionTokens: counted.completion_tokens });
      expect(stored!.recentSessions[0]).toMatchObject({ estimated: true, success: false });
      expect(stored!.totalTokens).toBeGreaterThan(0);
    });

    it('tracks an estimate when the consumer stops early, and closes the upstream request', async () => {
      const userId = nextUser();
      fake.script(PRIMARY, { text: 'a b c d e f g h i j', chunkDelayMs: 20 });
      for await (const event of ai.stream(request, { userId, operationType: 'rag_streaming' })) {
        if (event.type === 'delta') break;
      }
      await fake.waitForIdle();
      const stored = await ledgerOf(userId);
      expect(stored!.recentSessions[0]).toMatchObject({ estimated: true, success: false, completionTokens: 1 });
      expect(stored!.recentSessions[0].errorMessage).toContain('abandoned');
    });

    it('answers 499 and tracks an estimate when the caller aborts mid-stream', async () => {
      const userId = nextUser();
      fake.script(PRIMARY, { text: 'a b c d e f g h i j', chunkDelayMs: 20 });
      const controller = new AbortController();
      const error = await failureOf(
        (async () => {
          for await (const event of ai.stream(request, { userId, operationType: 'rag_streaming', signal: controller.signal })) {
            if (event.type === 'delta') controller.abort();
          }
        })(),
      );
      expect(error).toBeInstanceOf(AiRequestAbortedException);
      await fake.waitForIdle();
      expect((await ledgerOf(userId))!.recentSessions[0]).toMatchObject({ estimated: true, success: false });
    });

    it('estimates when the final chunk carries no usage', async () => {
      fake.script(PRIMARY, { text: 'no usage here', omitUsage: true });
      const events = await collect(ai.stream(request, { operationType: 'rag_streaming' }));
      const result = (events[events.length - 1] as Extract<AiStreamEvent, { type: 'done' }>).result;
      expect(result.usage).toMatchObject({ estimated: true, completionTokens: fake.usageFor(PRIMARY, [], 'no usage here').completion_tokens });
    });

    it('leaks no upstream connections after many aborts and timeouts', async () => {
      // Start from no sockets; give the client a moment to notice, or it may reuse one being closed.
      fake.closeIdleConnections();
      await new Promise((resolve) => setTimeout(resolve, 50));
      for (let i = 0; i < 10; i++) {
        fake.script(PRIMARY, { text: 'x y z w v u', chunkDelayMs: 20 });
        for await (const event of ai.stream(request, { operationType: 'rag_streaming' })) {
          if (event.type === 'delta') break;
        }
      }
      for (let i = 0; i < 3; i++) {
        fake.script(PRIMARY, { delayMs: 5_000 });
        fake.script(FALLBACK, { delayMs: 5_000 });
        await failureOf(ai.complete(request, { operationType: 'chat_completion' }));
      }
      await fake.waitForIdle();
      expect(fake.activeRequests()).toBe(0);
      expect(fake.busyConnections()).toBe(0);
      // Aborted sockets are destroyed, so open sockets do not pile up with the number of aborts.
      expect(fake.openConnections()).toBeLessThanOrEqual(2);
      fake.closeIdleConnections();
      await new Promise((resolve) => setTimeout(resolve, 50));
      expect(fake.openConnections()).toBe(0);
    });
  });

  describe('embed', () => {
    it('embeds one input as `embedding`, counting embedding tokens (not prompt tokens)', async () => {
      const userId = nextUser();
      const result = await ai.embed(['a short passage about ledgers'], { userId });
      expect(result.vectors).toHaveLength(1);
      expect(result.usage).toEqual({ embeddingTokens: 6, totalTokens: 6, estimated: false });
      expect(result).toMatchObject({ model: 'openai/text-embedding-3-small', costSource: 'catalog', costMicros: 0 });
      const stored = await ledgerOf(userId);
      expect(stored).toMatchObject({ totalEmbeddingTokens: 6, totalPromptTokens: 0, totalTokens: 6 });
      expect(stored!.recentSessions[0]).toMatchObject({ operationType: 'embedding' });
    });

    it('embeds several inputs as `batch_embedding` and prices them', async () => {
      const userId = nextUser();
      const inputs = Array.from({ length: 200 }, (_, i) => `document number ${i} about tokens and costs`);
      const result = await ai.embed(inputs, { userId });
      expect(result.vectors).toHaveLength(200);
      // text-embedding-3-small at $0.02 per 1M tokens.
      expect(result.costMicros).toBe(Math.round((result.usage.embeddingTokens * 2) / 100));
      expect((await ledgerOf(userId))!.recentSessions[0]).toMatchObject({ operationType: 'batch_embedding', embeddingTokens: result.usage.embeddingTokens });
    });

    it('estimates embedding tokens when the provider sends no usage', async () => {
      fake.script('openai/text-embedding-3-small', { omitUsage: true });
      const result = await ai.embed(['alpha beta', 'gamma'], { operationType: 'embedding' });
      expect(result.usage).toEqual({ embeddingTokens: 3, totalTokens: 3, estimated: true });
    });

    it('turns an embedding failure into a 503/502 without the body', async () => {
      fake.script('openai/text-embedding-3-small', { status: 401 });
      const error = (await failureOf(ai.embed(['x'], {}))) as HttpException;
      expect(error).toBeInstanceOf(AiUnavailableException);
      expect(JSON.stringify(error.getResponse())).not.toContain(RAW_BODY_MARKER);
    });
  });
});
