import { Agent, get } from 'node:http';
import type { AddressInfo } from 'node:net';
import request from 'supertest';
import { MAX_PROMPT_LENGTH } from '../src/plugin/dto/generate-plugin.dto';
import { MAX_QUERY_LENGTH } from '../src/search/dto/semantic-search.dto';
import { MAX_TEXT } from '../src/embeddings/dto/embed-resource.dto';
import { MAX_CHAT_CONTENT_LENGTH, MAX_CHAT_MESSAGES } from '../src/gateway/dto/chat-completion-request.dto';
import { MAX_EMBEDDING_INPUTS } from '../src/gateway/gateway.service';
import { FakeProviderServer, FakeResponse } from './support/fake-provider.server';
import { startMongoChild, stopProcess } from './support/fault-processes';
import { createTestApp, TestApp } from './support/test-app';

const BODY_LIMIT_BYTES = 1024 * 1024;
const HEALTH_WITHIN_MS = 200;
const PROBE_INTERVAL_MS = 5;
const CHAT_MODEL = 'openai/gpt-4o-mini';
const EMBEDDING_MODEL = 'text-embedding-3-small';
const LARGE_EMBEDDING_MODEL = 'text-embedding-3-large';

/**
 * The tokenizer's worst cases one after another: runs with no word break of letters, spaces,
 * CJK and punctuation (each quadratic in tiktoken alone), then dense short tokens.
 */
const HOSTILE_UNIT = 'a'.repeat(20_000) + ' '.repeat(5000) + '中文'.repeat(2000) + '!'.repeat(5000) + '\n'.repeat(2000) + ' \n\t a'.repeat(1000);
function hostile(length: number): string {
  return HOSTILE_UNIT.repeat(Math.ceil(length / HOSTILE_UNIT.length)).slice(0, length);
}

/** Longest hostile texts of the field's maximum that `count` of them fit the body limit together. */
function fitting(max: number, count: number, overhead = 400, tag = ''): string[] {
  const each = Math.min(max, Math.floor((BODY_LIMIT_BYTES - overhead) / count));
  // Distinct texts (across cases too, by tag), so neither the embedding cache nor de-duplication spares any of the work.
  let texts = Array.from({ length: count }, (_, index) => `${tag}${index}:${hostile(each)}`.slice(0, each));
  while (Buffer.byteLength(JSON.stringify(texts)) + overhead > BODY_LIMIT_BYTES) texts = texts.map((text) => text.slice(0, Math.floor(text.length * 0.98)));
  return texts;
}

/**
 * Short distinct texts: the 3,072-dimension cases are about the answer's size; the tokenizer's
 * worst cases are the hostile ones above.
 */
function sentences(count: number, tag: string): string[] {
  return Array.from({ length: count }, (_, index) => `${tag} ${index}: the plugin registers its commands in plugin.yml and handles them in onCommand.`);
}

const PROJECT_ANSWER = JSON.stringify({
  name: 'GuardPlugin',
  packageName: 'com.example.guard',
  mainClass: 'com.example.guard.Main',
  version: '1.0.0',
  files: [{ path: 'src/main/java/com/example/guard/Main.java', content: 'package com.example.guard;\npublic class Main {}\n' }],
});

interface GuardCase {
  name: string;
  path: string;
  body: () => object;
  /** What the provider answers, in order (default: its own answer). */
  answers?: string[];
  /** Provider answers beyond text, e.g. dense vectors. */
  answer?: FakeResponse;
  headers?: Record<string, string>;
  /** Send the request a second time (an idempotent replay) before the probing stops. */
  replay?: boolean;
  /** Asserts on the answers (parsed JSON), after the probing. */
  check?: (bodies: unknown[], responses: request.Response[]) => void;
}

interface EmbeddingList {
  object: string;
  data: Array<{ object: string; index: number; embedding: number[] }>;
  model: string;
  usage: { prompt_tokens: number; total_tokens: number };
}

/** 256 vectors of full-precision floats: ~8 MB of JSON at 1,536 dimensions, ~16 MB at 3,072. */
const denseVectors =
  (dimensions: number) =>
  (bodies: unknown[]): void => {
    for (const body of bodies as EmbeddingList[]) {
      expect(body.object).toBe('list');
      expect(body.data).toHaveLength(MAX_EMBEDDING_INPUTS);
      expect(body.data.every((item, index) => item.object === 'embedding' && item.index === index && item.embedding.length === dimensions)).toBe(true);
      expect(body.data[0].embedding.filter((value) => value === 0)).toHaveLength(0);
      expect(body.usage.total_tokens).toBeGreaterThan(0);
    }
  };

const CASES: GuardCase[] = [
  { name: 'chat completion, two messages at the 500k limit', path: '/v1/chat/completions', body: () => ({ model: CHAT_MODEL, messages: fitting(MAX_CHAT_CONTENT_LENGTH, 2).map((content) => ({ role: 'user', content })) }) },
  { name: 'streamed chat completion', path: '/v1/chat/completions', body: () => ({ model: CHAT_MODEL, stream: true, messages: fitting(MAX_CHAT_CONTENT_LENGTH, 2).map((content) => ({ role: 'user', content })) }) },
  { name: 'chat completion, 500 messages', path: '/v1/chat/completions', body: () => ({ model: CHAT_MODEL, messages: fitting(MAX_CHAT_CONTENT_LENGTH, MAX_CHAT_MESSAGES, 40_000).map((content) => ({ role: 'user', content })) }) },
  { name: '/v1/embeddings, 256 inputs', path: '/v1/embeddings', body: () => ({ model: EMBEDDING_MODEL, input: fitting(MAX_TEXT, MAX_EMBEDDING_INPUTS, 20_000) }) },
  {
    name: '/v1/embeddings, 256 dense 1536-dimension vectors, usage left out',
    path: '/v1/embeddings',
    body: () => ({ model: EMBEDDING_MODEL, input: fitting(MAX_TEXT, MAX_EMBEDDING_INPUTS, 20_000, 'dense:') }),
    answer: { dense: true, omitUsage: true },
    check: denseVectors(1536),
  },
  {
    name: '/v1/embeddings, 256 dense 3072-dimension vectors, usage reported',
    path: '/v1/embeddings',
    body: () => ({ model: LARGE_EMBEDDING_MODEL, input: sentences(MAX_EMBEDDING_INPUTS, 'large') }),
    answer: { dense: true, omitUsage: false },
    check: denseVectors(3072),
  },
  {
    name: '/v1/embeddings, 256 dense 3072-dimension vectors with an Idempotency-Key, then its replay',
    path: '/v1/embeddings',
    body: () => ({ model: LARGE_EMBEDDING_MODEL, input: sentences(MAX_EMBEDDING_INPUTS, 'replayed') }),
    answer: { dense: true },
    headers: { 'idempotency-key': 'guard-dense-replay' },
    replay: true,
    check: (bodies, responses) => {
      denseVectors(3072)(bodies);
      expect(responses[1].headers['idempotent-replayed']).toBe('true');
      expect(Buffer.compare(responses[1].body as Buffer, responses[0].body as Buffer)).toBe(0);
    },
  },
  { name: '/embeddings, 512 contents', path: '/embeddings', body: () => ({ resourceId: 'guard-many', contents: fitting(MAX_TEXT, 512, 20_000) }) },
  { name: '/v1/embeddings, inputs at the 200k limit', path: '/v1/embeddings', body: () => ({ model: EMBEDDING_MODEL, input: fitting(MAX_TEXT, 5) }) },
  { name: '/embeddings content at the 200k limit', path: '/embeddings', body: () => ({ resourceId: 'guard-doc', contents: fitting(MAX_TEXT, 5) }) },
  { name: 'semantic search query', path: '/api/v1/search/semantic', body: () => ({ query: hostile(MAX_QUERY_LENGTH) }) },
  { name: 'RAG answer query', path: '/api/v1/search/answer', body: () => ({ query: hostile(MAX_QUERY_LENGTH) }) },
  { name: 'plugin generation prompt', path: '/plugin/generate-only', body: () => ({ prompt: hostile(MAX_PROMPT_LENGTH) }), answers: [PROJECT_ANSWER] },
  { name: 'code generation prompt', path: '/ai/generate-code', body: () => ({ prompt: hostile(MAX_PROMPT_LENGTH), pluginName: 'GuardPlugin' }), answers: ['A plugin spec', PROJECT_ANSWER] },
  { name: 'chat message', path: '/chat/message', body: () => ({ message: hostile(MAX_PROMPT_LENGTH) }) },
  { name: 'orcha chat message', path: '/api/v1/orcha/chat', body: () => ({ message: hostile(MAX_PROMPT_LENGTH) }) },
];

/** A superagent parser keeping the body as bytes (in Node its `response` is the IncomingMessage). */
function rawBody(message: request.Response, callback: (error: Error | null, body: Buffer) => void): void {
  const response = message as unknown as NodeJS.ReadableStream;
  const chunks: Buffer[] = [];
  response.on('data', (chunk: Buffer) => chunks.push(chunk));
  response.on('end', () => callback(null, Buffer.concat(chunks)));
  response.on('error', (error: Error) => callback(error, Buffer.alloc(0)));
}

describe('event-loop guard: the largest accepted inputs never stall /health', () => {
  let fake: FakeProviderServer;
  let mongo: Awaited<ReturnType<typeof startMongoChild>>;
  let testApp: TestApp;
  let userKey: string;
  let baseUrl: string;
  // One kept-alive socket: each probe measures the event loop, not connection set-up.
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  const health = () =>
    new Promise<void>((resolve, reject) => {
      get(`${baseUrl}/health`, { agent }, (response) => response.resume().on('end', resolve).on('error', reject)).on('error', reject);
    });

  beforeAll(async () => {
    fake = await FakeProviderServer.start();
    // MongoDB in a process of its own, as in production: the run's in-process server would share this
    // event loop (jest runs in band on two cores), and its work on a 6 MB idempotency record would
    // count as the app's stall.
    mongo = await startMongoChild();
    testApp = await createTestApp({
      MONGODB_URI: mongo.uri,
      AI_PROVIDER: 'compatible',
      AI_BASE_URL: fake.baseUrl,
      AI_API_KEY: 'sk-guard-test',
      AI_PRIMARY_MODEL: CHAT_MODEL,
      AI_FALLBACK_MODEL: 'none',
      AI_EMBEDDING_MODEL: EMBEDDING_MODEL,
      RATE_LIMIT_PER_MINUTE: 100_000,
      BODY_LIMIT_BYTES,
    });
    userKey = (await testApp.api().post('/admin/api-keys').send({ role: 'user', userId: 'guard-user' }).expect(201)).body.key as string;
    await testApp.api().put('/user/guard-user/limits').send({ rolling24hTokens: null, dailyTokens: null, monthlyCostUsd: null }).expect(200);
    await new Promise<void>((resolve) => testApp.http.listen(0, '127.0.0.1', resolve));
    baseUrl = `http://127.0.0.1:${(testApp.http.address() as AddressInfo).port}`;
    await health();
  }, 120_000);

  afterAll(async () => {
    agent.destroy();
    await testApp?.close();
    await fake?.stop();
    await stopProcess(mongo?.child);
  });

  it.each(CASES)('$name: /health answers within 200 ms throughout', async ({ path, body, answers, answer, headers, replay, check }) => {
    // The provider leaves usage out (unless the case says otherwise), so the service counts prompt and answer itself (its slowest path).
    fake.script('*', ...(answers ?? Array.from({ length: 10 }, () => undefined)).map((text) => ({ text, omitUsage: true, ...answer })));
    // Serialised once, before the probing: the client shares this process with the app.
    const payload = JSON.stringify(body());
    expect(Buffer.byteLength(payload)).toBeLessThanOrEqual(BODY_LIMIT_BYTES);

    // The client keeps the answer as bytes until the probing stops.
    const send = () =>
      request(baseUrl)
        .post(path)
        .set({ authorization: `Bearer ${userKey}`, 'content-type': 'application/json', ...headers })
        .buffer(true)
        .parse(rawBody)
        .send(payload);
    let done = false;
    const slowest: number[] = [];
    const work = (async () => {
      const first = await send();
      return replay ? [first, await send()] : [first];
    })().finally(() => (done = true));
    // Each probe is timed from when it was due, not from when its timer fired: the client shares the
    // event loop, so a stall that began in the pause between probes would only delay the send and go
    // unseen. What counts is the CPU time the process spent from the pause to the answer (at most the
    // wall time): a stall is the event loop working; waiting for a core on a busy machine is not.
    let due = performance.now();
    let cpuSince = process.cpuUsage();
    while (!done) {
      await health();
      const cpu = process.cpuUsage(cpuSince);
      slowest.push(Math.min(performance.now() - due, (cpu.user + cpu.system) / 1000));
      due = performance.now() + PROBE_INTERVAL_MS;
      cpuSince = process.cpuUsage();
      await new Promise((resolve) => setTimeout(resolve, PROBE_INTERVAL_MS));
    }
    const responses = await work;
    fake.reset();
    for (const response of responses) expect(response.status).toBeLessThan(500);
    expect(slowest.length).toBeGreaterThan(0);
    expect(Math.max(...slowest)).toBeLessThan(HEALTH_WITHIN_MS);
    check?.(
      responses.map((response) => JSON.parse((response.body as Buffer).toString('utf8')) as unknown),
      responses,
    );
  }, 120_000);
});
