import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import request from 'supertest';
import { UsageEventsService } from '../src/analytics/usage-events.service';
import { UsageLogWriter } from '../src/analytics/usage-log.writer';
import type { ChatMessage } from '../src/ai/ai-provider.interface';
import { TokenizerService } from '../src/ai/tokenizer.service';
import { INTENT_INSTRUCTIONS } from '../src/chat/chat-intent';
import { ragMessages } from '../src/search/rag-prompt';
import {
  ANSWER_SHAPES,
  AnswerShape,
  BilledCall,
  FakeProviderServer,
  isProviderFailure,
  RAW_BODY_MARKER,
  shapeMarker,
} from './support/fake-provider.server';
import { createTestApp, TestApp } from './support/test-app';

const PRIMARY = 'openai/gpt-4o-mini';
const FALLBACK = 'openai/gpt-4o';
const EMBEDDING = 'openai/text-embedding-3-small';
/** Each cell runs this many at a time: the hang cells wait out AI_TIMEOUT_MS side by side. */
const CONCURRENCY = 6;

/** What the features ask of the model, which decides which answers they can use. */
type ChatUse =
  | 'none' // embeddings only
  | 'any' // a pass-through: every answer is usable
  | 'text' // a text answer: empty and tool-call-only answers are not
  | 'json'; // a JSON object the feature validates (a plugin project)

interface Endpoint {
  name: string;
  tracked: boolean;
  stream?: boolean;
  chat: ChatUse;
  /** An embedding call comes before any chat call (search): it meets provider failures first. */
  embedsFirst?: boolean;
  /** Runs before the cell (e.g. resources for RAG), billed under the cell too. */
  prepare?: (user: string, cell: string) => Promise<void>;
  send: (marker: string, user: string, cell: string) => request.Test;
}

interface Cell {
  id: string;
  user: string;
  status: number;
  body: Record<string, any> | string;
  /** What the preparation (not the request) was billed. */
  prep: BilledCall[];
  /** What the request was billed. */
  billed: BilledCall[];
  retryAfter?: string;
  models: (string | undefined)[];
}

const TEXT_UNUSABLE: ReadonlySet<AnswerShape> = new Set(['empty', 'tool-calls']);
const JSON_UNUSABLE: ReadonlySet<AnswerShape> = new Set(['json-truncated', 'json-invalid', 'prose', 'empty', 'tool-calls', 'refusal']);

function failureStatus(shape: AnswerShape): number {
  if (shape === 'hang') return 504;
  if (shape === 'rate-limited') return 503;
  return 502;
}

/** The documented status of an endpoint for a shape (README: "Answers models really send"). */
function expectedStatus(endpoint: Endpoint, shape: AnswerShape): number {
  const stream = endpoint.stream === true;
  const embeddingFails = isProviderFailure(shape, true);
  if (endpoint.chat === 'none' || endpoint.embedsFirst) {
    if (embeddingFails) return failureStatus(shape);
    if (endpoint.chat === 'none') return 200;
  }
  if (isProviderFailure(shape, stream)) return failureStatus(shape);
  if (stream || endpoint.chat === 'any') return 200;
  if (endpoint.chat === 'text') return TEXT_UNUSABLE.has(shape) ? 502 : 200;
  return JSON_UNUSABLE.has(shape) ? 502 : 200;
}

function fallbackExpected(endpoint: Endpoint, shape: AnswerShape): boolean {
  if (endpoint.chat === 'none') return false;
  if (endpoint.embedsFirst && isProviderFailure(shape, true)) return false;
  return isProviderFailure(shape, endpoint.stream === true);
}

const textParser = (res: request.Response, callback: (error: Error | null, body: unknown) => void) => {
  const stream = res as unknown as NodeJS.ReadableStream;
  let body = '';
  stream.setEncoding('utf8');
  stream.on('data', (chunk: string) => (body += chunk));
  stream.on('end', () => callback(null, body));
};

function sseData(text: string): unknown[] {
  return text
    .split('\n\n')
    .map((block) => block.trim())
    .filter((block) => block.startsWith('data: '))
    .map((block) => block.slice('data: '.length))
    .map((data) => (data === '[DONE]' ? data : (JSON.parse(data) as unknown)));
}

async function pool<T>(items: readonly T[], size: number, run: (item: T) => Promise<void>): Promise<void> {
  const queue = [...items];
  await Promise.all(Array.from({ length: size }, async () => {
    for (let item = queue.shift(); item !== undefined; item = queue.shift()) await run(item);
  }));
}

describe('AI endpoints against real-world answer shapes', () => {
  let fake: FakeProviderServer;
  let testApp: TestApp;
  let sequence = 0;
  /** Everything the provider billed in this app, for the system-wide totals at the end. */
  const allBilled: BilledCall[] = [];

  beforeAll(async () => {
    fake = await FakeProviderServer.start();
    testApp = await createTestApp({
      AI_PROVIDER: 'openrouter',
      AI_BASE_URL: fake.baseUrl,
      OPENROUTER_API_KEY: 'sk-or-test-0123456789',
      AI_PRIMARY_MODEL: PRIMARY,
      AI_FALLBACK_MODEL: FALLBACK,
      AI_EMBEDDING_MODEL: EMBEDDING,
      // Short, for the hang cells; long enough for a normal call on a busy machine.
      AI_TIMEOUT_MS: 2500,
      PLUGIN_BUILD_TOOL: 'javac',
      // Failed provider calls and the 5xx they end in are logged by design; this suite makes hundreds
      // of them on purpose (and asserts every status, so an unexpected 500 still fails it).
      LOG_LEVEL: 'fatal',
    });
  });

  afterAll(async () => {
    await testApp?.close();
    await fake?.stop();
  });

  const post = (path: string, body: Record<string, unknown>, cell: string) =>
    testApp.api().post(path).set('x-request-id', cell).send(body).buffer(true).parse(textParser);

  const resourceFor = async (user: string, cell: string) => {
    await post('/embeddings', {
      resourceId: 'guide',
      userId: user,
      content: `Bukkit plugins register commands in plugin.yml and handle commands in onCommand. ${shapeMarker('usage-openai', cell)}`,
    }, `${cell}-prep`).expect(200);
  };

  const plugin = (path: string, tracked: boolean): Endpoint => ({
    name: `${path}${tracked ? '' : ' without userId'}`,
    tracked,
    chat: 'json',
    send: (marker, user, cell) => post(path, { prompt: `A plugin with a /hello command ${marker}`, name: 'Shaped', ...(tracked ? { userId: user } : {}) }, cell),
  });

  const generateCode = (tracked: boolean): Endpoint => ({
    name: `/ai/generate-code${tracked ? '' : ' without userId'}`,
    tracked,
    chat: 'json',
    send: (marker, user, cell) => post('/ai/generate-code', { prompt: `A /hello command ${marker}`, pluginName: 'Shaped', ...(tracked ? { userId: user } : {}) }, cell),
  });

  const embeddings = (tracked: boolean): Endpoint => ({
    name: `/embeddings${tracked ? '' : ' without userId'}`,
    tracked,
    chat: 'none',
    send: (marker, user, cell) => post('/embeddings', { resourceId: 'doc', content: `Cell ${cell} text to embed ${marker}`, ...(tracked ? { userId: user } : {}) }, cell),
  });

  const ENDPOINTS: Endpoint[] = [
    { name: '/chat/message', tracked: true, chat: 'text', send: (marker, user, cell) => post('/chat/message', { username: user, message: `How do commands work? ${marker}` }, cell) },
    { name: '/api/v1/orcha/chat', tracked: true, chat: 'text', send: (marker, user, cell) => post('/api/v1/orcha/chat', { user_id: user, message: `How do commands work? ${marker}` }, cell) },
    plugin('/plugin/generate', true),
    plugin('/plugin/generate-and-compile', true),
    plugin('/plugin/generate-and-compile', false),
    plugin('/plugin/generate-only', true),
    plugin('/plugin/generate-only', false),
    generateCode(true),
    generateCode(false),
    embeddings(true),
    embeddings(false),
    { name: '/api/v1/search/semantic', tracked: true, chat: 'none', prepare: resourceFor, send: (marker, user, cell) => post('/api/v1/search/semantic', { userId: user, query: `commands in ${cell} ${marker}` }, cell) },
    {
      name: '/api/v1/search/answer',
      tracked: true,
      chat: 'text',
      embedsFirst: true,
      prepare: resourceFor,
      send: (marker, user, cell) => post('/api/v1/search/answer', { userId: user, query: `How do Bukkit plugins register commands in plugin.yml? ${marker}` }, cell),
    },
    {
      name: '/api/v1/search/answer (stream)',
      tracked: true,
      stream: true,
      chat: 'text',
      embedsFirst: true,
      prepare: resourceFor,
      send: (marker, user, cell) => post('/api/v1/search/answer', { userId: user, stream: true, query: `How do Bukkit plugins register commands in plugin.yml? ${marker}` }, cell),
    },
    {
      name: '/v1/chat/completions',
      tracked: true,
      chat: 'any',
      send: (marker, user, cell) => post('/v1/chat/completions', { model: PRIMARY, user, messages: [{ role: 'user', content: `Say hello ${marker}` }] }, cell),
    },
    {
      name: '/v1/chat/completions (stream)',
      tracked: true,
      stream: true,
      chat: 'any',
      send: (marker, user, cell) =>
        post('/v1/chat/completions', { model: PRIMARY, user, stream: true, stream_options: { include_usage: true }, messages: [{ role: 'user', content: `Say hello ${marker}` }] }, cell),
    },
    { name: '/v1/embeddings', tracked: true, chat: 'none', send: (marker, user, cell) => post('/v1/embeddings', { model: EMBEDDING, user, input: `Cell ${cell} ${marker}` }, cell) },
  ];

  async function runCell(endpoint: Endpoint, shape: AnswerShape): Promise<Cell> {
    const id = `c${++sequence}`;
    const user = `shape-${id}`;
    await endpoint.prepare?.(user, id);
    const prep = fake.billed.filter((call) => call.cell === id);
    const response = await endpoint.send(shapeMarker(shape, id), user, id);
    const text = response.body as string;
    const json = /json/.test(String(response.headers['content-type'])) ? (JSON.parse(text) as Record<string, any>) : text;
    const billed = fake.billed.filter((call) => call.cell === id && !prep.includes(call));
    allBilled.push(...prep, ...billed);
    const models = fake.requests.filter((received) => received.cell === id && received.path.endsWith('/chat/completions')).map((received) => received.model);
    return { id, user, status: response.status, body: json, prep, billed, models, retryAfter: response.headers['retry-after'] as string | undefined };
  }

  const sum = (calls: BilledCall[], pick: (call: BilledCall) => number) => calls.reduce((total, call) => total + pick(call), 0);

  async function checkCell(endpoint: Endpoint, shape: AnswerShape, cell: Cell): Promise<void> {
    const where = `${endpoint.name} × ${shape} (cell ${cell.id})`;
    const tokensOf = (calls: BilledCall[]) => sum(calls, (call) => call.promptTokens + call.completionTokens + call.embeddingTokens);
    const requestTotal = tokensOf(cell.billed);
    const everything = [...cell.prep, ...cell.billed];

    expect({ where, status: cell.status }).toEqual({ where, status: expectedStatus(endpoint, shape) });
    expect(JSON.stringify(cell.body)).not.toContain(RAW_BODY_MARKER);
    // The provider's Retry-After (1 s) is passed on with the 503 it caused.
    if (cell.status === 503) expect({ where, retryAfter: cell.retryAfter }).toEqual({ where, retryAfter: '1' });

    if (typeof cell.body === 'object') {
      const usage = cell.body.token_usage as Record<string, number> | undefined;
      if (usage) {
        expect({ where, tokens: usage.total_tokens, prompt: usage.prompt_tokens, completion: usage.completion_tokens }).toEqual({
          where,
          tokens: requestTotal,
          prompt: sum(cell.billed, (call) => call.promptTokens),
          completion: sum(cell.billed, (call) => call.completionTokens),
        });
        if (cell.billed.length > 0 && cell.billed.every((call) => call.costUsd !== undefined)) {
          expect(usage.cost_estimate_usd).toBeCloseTo(sum(cell.billed, (call) => call.costUsd!), 9);
        }
      } else {
        // Only OpenAI-shaped successes carry no token_usage; every failure body does.
        expect({ where, status: cell.status }).toEqual({ where, status: 200 });
      }
      if (endpoint.tracked && cell.body.tokenUsage) {
        expect({ where, used: cell.body.tokenUsage.tokensUsedThisRequest }).toEqual({ where, used: requestTotal });
      } else if (cell.status >= 500 && endpoint.tracked) {
        expect({ where, tokenUsage: cell.body.tokenUsage }).toEqual({ where, tokenUsage: expect.anything() });
      }
      if (endpoint.name === '/chat/message' && cell.status === 200) expect({ where, type: cell.body.type }).toEqual({ where, type: 'info' });
      // Structured answers, fenced or wrapped in prose, are taken from the primary model's first answer.
      if (endpoint.chat === 'json' && cell.status === 200) {
        const calls = (endpoint.name.startsWith('/ai/') ? 2 : 1) + (shape === 'no-structured-output' ? 1 : 0);
        expect({ where, models: cell.models }).toEqual({ where, models: Array(calls).fill(PRIMARY) });
      }
    } else if (endpoint.name.startsWith('/v1/chat') && cell.status === 200) {
      const chunks = sseData(cell.body).filter((data): data is Record<string, any> => typeof data === 'object' && data !== null && 'model' in data);
      expect({ where, models: [...new Set(chunks.map((chunk) => chunk.model))] }).toEqual({ where, models: [PRIMARY] });
      const usage = chunks.find((chunk) => chunk.usage)?.usage as Record<string, number> | undefined;
      if (usage) expect({ where, tokens: usage.total_tokens }).toEqual({ where, tokens: requestTotal });
    } else if (cell.status === 200) {
      // A RAG stream ends with a done or error event carrying the request's token_usage.
      const last = sseData(cell.body).filter((data): data is Record<string, any> => typeof data === 'object' && data !== null && 'token_usage' in data).at(-1);
      expect({ where, tokens: last?.token_usage.total_tokens }).toEqual({ where, tokens: requestTotal });
    }

    // Every billed call is one usage event of this request (or of its preparation), attributed right.
    const events = await testApp.db
      .collection('usage_events')
      .find({ requestId: { $in: [cell.id, `${cell.id}-prep`] } })
      .toArray();
    const eventTokens = events.reduce((total, event) => total + (event.total_tokens as number), 0);
    expect({ where, events: events.length, tokens: eventTokens }).toEqual({ where, events: everything.length, tokens: tokensOf(everything) });
    for (const event of events) expect({ where, user: event.user_id }).toEqual({ where, user: endpoint.tracked || event.requestId !== cell.id ? cell.user : null });
    // The query logged is what the user wrote: never passages, our prompts or a repair message.
    for (const event of events.filter((event) => event.requestId === cell.id)) {
      expect({ where, query: event.query }).toEqual({ where, query: expect.stringContaining(`[fake-cell:${cell.id}]`) });
      expect({ where, query: event.query }).not.toEqual({ where, query: expect.stringMatching(/Passages:|Plugin name:|previous answer|Classify the user/) });
    }

    const ledger = await testApp.db.collection('user_token_usage').findOne({ userId: cell.user });
    expect({ where, ledger: (ledger?.totalTokens as number | undefined) ?? 0 }).toEqual({ where, ledger: tokensOf(cell.prep) + (endpoint.tracked ? requestTotal : 0) });

    // A chat endpoint asks the model unless an embedding before it failed (no silent short cut).
    const embeddingFailed = (endpoint.chat === 'none' || endpoint.embedsFirst) && isProviderFailure(shape, true);
    expect({ where, asked: cell.models.length > 0 }).toEqual({ where, asked: endpoint.chat !== 'none' && !embeddingFailed });
    const fallbackCalls = cell.models.filter((model) => model === FALLBACK).length;
    expect({ where, fallback: fallbackCalls > 0 }).toEqual({ where, fallback: fallbackExpected(endpoint, shape) });
  }

  describe('every endpoint against every shape', () => {
    const grid = new Map<string, Cell>();
    const key = (endpoint: Endpoint, shape: AnswerShape) => `${endpoint.name} ${shape}`;

    // All cells at once: the hang cells wait out their timeouts while the others run.
    beforeAll(async () => {
      const cells = ENDPOINTS.flatMap((endpoint) => ANSWER_SHAPES.map((shape) => [endpoint, shape] as const));
      await pool(cells, CONCURRENCY, async ([endpoint, shape]) => {
        grid.set(key(endpoint, shape), await runCell(endpoint, shape));
      });
    }, 300_000);

    it.each(ENDPOINTS.map((endpoint) => [endpoint.name, endpoint] as const))('%s: documented status and exact usage for every shape', async (_name, endpoint) => {
      for (const shape of ANSWER_SHAPES) await checkCell(endpoint, shape, grid.get(key(endpoint, shape))!);
    });
  });

  describe('beyond single requests', () => {
    it('tracks a stream the client abandons, as an estimate no larger than what was sent', async () => {
      const id = `c${++sequence}`;
      const user = `shape-${id}`;
      const abort = new AbortController();
      // A real socket, so the client can go away mid-stream.
      await testApp.app.listen(0, '127.0.0.1');
      const response = await fetch(`${await testApp.app.getUrl()}/v1/chat/completions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${testApp.adminKey}`, 'content-type': 'application/json', 'x-request-id': id },
        body: JSON.stringify({ model: PRIMARY, user, stream: true, messages: [{ role: 'user', content: `Count slowly ${shapeMarker('stream-slow', id)}` }] }),
        signal: abort.signal,
      });
      expect(response.status).toBe(200);
      const reader = response.body!.getReader();
      let received = '';
      while (!/"content":"\s*\S/.test(received)) received += new TextDecoder().decode((await reader.read()).value);
      abort.abort();
      await reader.cancel().catch(() => undefined);

      const deadline = Date.now() + 30_000;
      let events: Record<string, any>[] = [];
      while (events.length === 0 && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 50));
        events = await testApp.db.collection('usage_events').find({ requestId: id }).toArray();
      }
      // The fake files its bill once it notices the client went away.
      while (!fake.billed.some((call) => call.cell === id) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
      const billed = fake.billed.filter((call) => call.cell === id);
      allBilled.push(...billed);
      expect(billed).toHaveLength(1);
      expect(events).toHaveLength(1);
      expect(events[0]).toMatchObject({ user_id: user, success: false, estimated: true, prompt_tokens: billed[0].promptTokens });
      expect(events[0].completion_tokens).toBeGreaterThan(0);
      expect(events[0].completion_tokens).toBeLessThanOrEqual(billed[0].completionTokens);
      // The fake may have sent a chunk the app never read: the books follow what the app could count.
      allBilled[allBilled.length - 1] = { ...billed[0], completionTokens: events[0].completion_tokens };
      const ledger = await testApp.db.collection('user_token_usage').findOne({ userId: user });
      expect(ledger?.totalTokens).toBe(events[0].total_tokens);
    }, 60_000);

    it('refuses a chat at the edge of its limit whole, before any call is billed', async () => {
      const id = `c${++sequence}`;
      const user = `shape-${id}`;
      const message = `How do commands work? ${shapeMarker('prose', id)}`;
      // Room for the intent call (its prompt and max_tokens 20), none for the answer: the request reserves both up front.
      const intentPrompt = testApp.app.get(TokenizerService).countMessages([{ role: 'system', content: INTENT_INSTRUCTIONS }, { role: 'user', content: message }], PRIMARY);
      await testApp.api().put(`/user/${user}/limits`).send({ dailyTokens: intentPrompt + 20 }).expect(200);
      const response = await post('/chat/message', { username: user, message }, id);
      const body = JSON.parse(response.body as string);
      expect(response.status).toBe(429);
      expect(body).toMatchObject({ limit: expect.any(String) });
      expect(fake.billed.filter((call) => call.cell === id)).toHaveLength(0);
      expect(body).not.toHaveProperty('token_usage');
      expect(await testApp.db.collection('usage_events').countDocuments({ requestId: id })).toBe(0);
    });

    // The query embedding and the answer are reserved together before the embedding is made.
    it.each([
      { name: 'a RAG answer', path: '/api/v1/search/answer', body: (user: string, text: string) => ({ userId: user, query: text }) },
      { name: 'a chat with use_rag', path: '/api/v1/orcha/chat', body: (user: string, text: string) => ({ user_id: user, message: text, use_rag: true }) },
    ])('refuses $name at the edge of its limit whole, before the query embedding is billed', async ({ path, body }) => {
      const id = `c${++sequence}`;
      const user = `shape-${id}`;
      await resourceFor(user, `${id}p`);
      allBilled.push(...fake.billed.filter((call) => call.cell === `${id}p`));
      const used = (await testApp.db.collection('user_token_usage').findOne({ userId: user }))?.totalTokens as number;
      const text = `How do Bukkit plugins register commands in plugin.yml? ${shapeMarker('usage-openai', id)}`;
      // Room for the embedding, none for the answer.
      await testApp.api().put(`/user/${user}/limits`).send({ dailyTokens: used + testApp.app.get(TokenizerService).countText(text, EMBEDDING) + 20 }).expect(200);
      const response = await post(path, body(user, text), id);
      expect(response.status).toBe(429);
      expect(JSON.parse(response.body as string)).toMatchObject({ limit: expect.any(String) });
      expect(fake.billed.filter((call) => call.cell === id)).toHaveLength(0);
      expect(await testApp.db.collection('usage_events').countDocuments({ requestId: id })).toBe(0);
      expect((await testApp.db.collection('user_token_usage').findOne({ userId: user }))?.totalTokens).toBe(used);
    });

    it('gives a RAG answer fewer passages when the limit leaves room for fewer, and asks for no more than that room', async () => {
      const id = `c${++sequence}`;
      const [limited, unlimited] = [`shape-${id}-limited`, `shape-${id}-unlimited`];
      const paragraph = (n: number) =>
        Array.from({ length: 40 }, (_, i) => `Section ${n}.${i}: Bukkit plugins register commands in plugin.yml and handle commands in onCommand.`).join(' ');
      const content = `${[1, 2, 3].map(paragraph).join('\n\n')} ${shapeMarker('usage-openai', `${id}p`)}`;
      for (const user of [limited, unlimited]) {
        await post('/embeddings', { resourceId: 'guide', userId: user, content }, `${id}p`).expect(200);
      }
      const query = `How do Bukkit plugins register commands in plugin.yml? ${shapeMarker('usage-openai', id)}`;

      const whole = await post('/api/v1/search/answer', { userId: unlimited, query }, id).expect(200);
      const allSources = JSON.parse(whole.body as string).sources.length;
      expect(allSources).toBeGreaterThanOrEqual(3);

      const tokenizer = testApp.app.get(TokenizerService);
      const used = (await testApp.db.collection('user_token_usage').findOne({ userId: limited }))?.totalTokens as number;
      const base = tokenizer.countMessages(ragMessages(query, []), PRIMARY);
      // The embedding, the prompt without passages, about two passages and the completion hold (AI_RESERVE_COMPLETION_TOKENS).
      const room = tokenizer.countText(query, EMBEDDING) + 20 + base + 1_000 + 1_024;
      await testApp.api().put(`/user/${limited}/limits`).send({ dailyTokens: used + room }).expect(200);
      const [requestsBefore, billedBefore] = [fake.requests.length, fake.billed.length];
      const fitted = await post('/api/v1/search/answer', { userId: limited, query }, id).expect(200);
      // An answer's cell is the first marker of its prompt: a passage's (`${id}p`) when it leads.
      allBilled.push(...fake.billed.filter((call) => call.cell === id || call.cell === `${id}p`));
      const embedded = fake.billed.slice(billedBefore).filter((call) => call.kind === 'embeddings').reduce((sum, call) => sum + call.embeddingTokens, 0);
      const sources = JSON.parse(fitted.body as string).sources.length;
      expect(sources).toBeGreaterThanOrEqual(1);
      expect(sources).toBeLessThan(allSources);
      // The answer call's prompt and max_tokens fit in what the embedding left of the room.
      const answerCall = fake.requests.slice(requestsBefore).find((received) => received.path === '/v1/chat/completions');
      const asked = tokenizer.countMessages(answerCall!.body!.messages as ChatMessage[], PRIMARY) + (answerCall!.body!.max_tokens as number);
      expect(asked).toBeLessThanOrEqual(room - embedded);
      const ledger = (await testApp.db.collection('user_token_usage').findOne({ userId: limited }))?.totalTokens as number;
      expect(ledger).toBeLessThanOrEqual(used + room);
    });

    it('asks for structured output with a JSON schema where the model takes one', async () => {
      const id = `c${++sequence}`;
      await post('/chat/message', { username: `shape-${id}`, message: `Hi ${shapeMarker('json-whole', id)}` }, id).expect(200);
      await post('/plugin/generate-only', { prompt: `A /hi command ${shapeMarker('json-whole', id)}` }, id).expect(200);
      allBilled.push(...fake.billed.filter((call) => call.cell === id));
      const formats = fake.requests.filter((received) => received.cell === id).map((received) => received.body?.response_format as Record<string, any> | undefined);
      expect(formats.map((format) => format && [format.type, format.json_schema?.name])).toEqual([['json_schema', 'chat_intent'], undefined, ['json_schema', 'plugin_project']]);
    });

    it('names the requested embedding model on a cache miss and a cache hit alike', async () => {
      const id = `c${++sequence}`;
      const input = `Cache me ${shapeMarker('usage-openai', id)}`;
      const miss = await testApp.api().post('/v1/embeddings').send({ model: EMBEDDING, user: `shape-${id}`, input }).expect(200);
      const hit = await testApp.api().post('/v1/embeddings').send({ model: EMBEDDING, user: `shape-${id}`, input }).expect(200);
      allBilled.push(...fake.billed.filter((call) => call.cell === id));
      expect(hit.headers['x-token-ledger-cache-hits']).toBe('1');
      expect([miss.body.model, hit.body.model]).toEqual([EMBEDDING, EMBEDDING]);
    });

    it('accounts system-wide for every call the provider billed, tracked or not', async () => {
      // A mix of its own, so the test stands alone; after the table it covers every cell too.
      const id = `c${++sequence}`;
      await post('/ai/generate-code', { prompt: `A /hi command ${shapeMarker('usage-openrouter', id)}`, pluginName: 'Mixed' }, id).expect(200);
      await post('/plugin/generate-only', { prompt: `A /hi command ${shapeMarker('json-fenced', id)}`, userId: `shape-${id}` }, id).expect(200);
      await post('/embeddings', { resourceId: 'mixed', content: `Mixed ${shapeMarker('usage-missing', id)}` }, id).expect(200);
      allBilled.push(...fake.billed.filter((call) => call.cell === id));
      const events = testApp.app.get(UsageEventsService);
      await events.flushed();
      await events.settled();
      await testApp.app.get(UsageLogWriter).flush();
      const tokens = allBilled.reduce((total, call) => total + call.promptTokens + call.completionTokens + call.embeddingTokens, 0);
      const prompt = allBilled.reduce((total, call) => total + call.promptTokens, 0);
      const completion = allBilled.reduce((total, call) => total + call.completionTokens, 0);
      const embedding = allBilled.reduce((total, call) => total + call.embeddingTokens, 0);
      const unattributed = await testApp.db.collection('usage_events').find({ user_id: null }).toArray();
      expect(unattributed.length).toBeGreaterThan(0);

      const { body: metrics } = await request(testApp.http).get('/metrics').expect(200);
      expect(metrics.token_usage).toMatchObject({ total_prompt_tokens: prompt, total_completion_tokens: completion, total_embedding_tokens: embedding });

      const { text: prometheus } = await request(testApp.http).get('/metrics/prometheus').expect(200);
      const sample = (name: string) => Number(new RegExp(`^${name.replace(/[{}"=]/g, '\\$&')} (\\S+)$`, 'm').exec(prometheus)?.[1]);
      expect(sample('noki_ai_tokens_total{type="prompt"}') + sample('noki_ai_tokens_total{type="completion"}') + sample('noki_ai_tokens_total{type="embedding"}')).toBe(tokens);

      const { body: usage } = await testApp.api().get('/api/usage').query({ period: 'today' }).expect(200);
      expect(usage.summary).toMatchObject({ totalTokens: tokens, requestCount: allBilled.length });

      const { body: all } = await testApp.api().get('/api/v1/search/token-usage/all').query({ days: 1, limit: 1000 }).expect(200);
      expect(all.totals).toMatchObject({ total_tokens: tokens, operations: allBilled.length });
      const nobody = all.by_user.find((row: { user_id: string | null }) => row.user_id === null);
      expect(nobody).toMatchObject({ operations: unattributed.length, total_tokens: unattributed.reduce((total, event) => total + (event.total_tokens as number), 0) });
      expect(all.by_user.reduce((total: number, row: { total_tokens: number }) => total + row.total_tokens, 0)).toBe(tokens);

      const logDir = testApp.config.LOG_DIR;
      const lines = readdirSync(logDir)
        .filter((name) => name.endsWith('.jsonl'))
        .flatMap((name) => readFileSync(join(logDir, name), 'utf8').trim().split('\n'))
        .map((line) => JSON.parse(line) as { total_tokens: number; user_id: string | null });
      expect(lines).toHaveLength(allBilled.length);
      expect(lines.reduce((total, line) => total + line.total_tokens, 0)).toBe(tokens);
      expect(lines.filter((line) => line.user_id === null)).toHaveLength(unattributed.length);
    });
  });
});
