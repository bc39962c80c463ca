import { createHash } from 'node:crypto';
import { createServer, IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { ChatMessage } from '../../src/ai/ai-provider.interface';
import { HASHED_EMBEDDING_DIMENSIONS, hashedEmbeddingAsync } from '../../src/ai/hashed-embedding';
import { TokenizerService } from '../../src/ai/tokenizer.service';
import { stringifyInSlices } from '../../src/common/sliced-json';

/** Appears in every error body the fake sends, so tests can assert it never reaches a client. */
export const RAW_BODY_MARKER = 'FAKE-RAW-UPSTREAM-BODY';

/** Usage exactly as it travels on the wire (OpenAI field names, OpenRouter's `cost`). */
export interface WireUsage {
  prompt_tokens?: number;
  completion_tokens?: number;
  total_tokens?: number;
  cost?: number;
  prompt_tokens_details?: { cached_tokens?: number; [key: string]: unknown };
  completion_tokens_details?: { reasoning_tokens?: number; [key: string]: unknown };
  [key: string]: unknown;
}

/** One scripted answer; everything left out behaves like the default answer. */
export interface FakeResponse {
  /** Non-2xx answers with an OpenAI-style error body (containing RAW_BODY_MARKER). */
  status?: number;
  /** Wait before sending headers. */
  delayMs?: number;
  text?: string;
  /** Merged over the computed usage; null leaves usage out. */
  usage?: WireUsage | null;
  /** OpenRouter's usage.cost in USD. */
  cost?: number;
  cachedTokens?: number;
  reasoningTokens?: number;
  /** Leave usage out (same as usage: null). */
  omitUsage?: boolean;
  /** Destroy the socket after `resetAfterChunks` content chunks (streams) or half the body (JSON). */
  resetMidStream?: boolean;
  resetAfterChunks?: number;
  /** Pause between stream chunks. */
  chunkDelayMs?: number;
  finishReason?: string | null;
  /** Model to report; default: the requested one. */
  model?: string;
  /** Send this JSON body verbatim (status 200 unless `status` says otherwise). */
  body?: unknown;
  /**
   * Embeddings whose every dimension is a full-precision float, as real models send; the default
   * hashed vectors are mostly zeros for texts of few distinct words (and cheap to serialise).
   */
  dense?: boolean;
}

export interface ReceivedRequest {
  method: string;
  path: string;
  headers: IncomingMessage['headers'];
  body: Record<string, unknown> | undefined;
  model: string | undefined;
  cell?: string;
}

interface ChatBody {
  model: string;
  messages: ChatMessage[];
  stream?: boolean;
  stream_options?: { include_usage?: boolean };
  response_format?: { type?: string; json_schema?: { name?: string } };
}

/**
 * Answers real models and providers send, chosen per request by a marker (shapeMarker) in the
 * prompt or embedding input. Content shapes answer JSON-asking requests with JSON the feature
 * accepts (an intent, a plugin project, a generic object) and others with text.
 */
export const ANSWER_SHAPES = [
  'json-whole',
  'json-fenced',
  'json-prose',
  'json-truncated',
  'json-invalid',
  'prose',
  'empty',
  'tool-calls',
  'refusal',
  'unicode',
  'no-structured-output',
  'usage-openai',
  'usage-openrouter',
  'usage-missing',
  'error-200',
  'rate-limited',
  'server-error',
  'hang',
  'stream-usage',
  'stream-no-usage',
  'stream-cut',
  'stream-error-event',
  'stream-slow',
] as const;
export type AnswerShape = (typeof ANSWER_SHAPES)[number];

/** The shapes a client can blame on the provider before any text arrived (and so may try another model for). */
export function isProviderFailure(shape: AnswerShape, stream: boolean): boolean {
  if (['error-200', 'rate-limited', 'server-error', 'hang'].includes(shape)) return true;
  // Without a stream, a cut body and an error event are failed calls; in a stream they come after text.
  return !stream && (shape === 'stream-cut' || shape === 'stream-error-event');
}

/** Put into a prompt or embedding input: the fake answers that request in `shape`, and files what it bills under `cell`. */
export const shapeMarker = (shape: AnswerShape, cell?: string) => `[fake-shape:${shape}]${cell ? ` [fake-cell:${cell}]` : ''}`;
const SHAPE_PATTERN = /\[fake-shape:([a-z0-9-]+)\]/;
const CELL_PATTERN = /\[fake-cell:([A-Za-z0-9_.-]+)\]/;

/** Vector sizes of the models that do not answer with HASHED_EMBEDDING_DIMENSIONS (1,536). */
const MODEL_DIMENSIONS: Record<string, number> = { 'text-embedding-3-large': 3072 };

/** OpenRouter's usage.cost for every openrouter-shaped answer, in USD. */
export const SHAPE_COST_USD = 0.000321;
/** How long a `hang` waits before answering: far past any test's AI_TIMEOUT_MS; ends when the client goes away. */
const HANG_MS = 120_000;
const SLOW_CHUNK_MS = 250;

/** What one answer cost as the client can know it: the usage sent, or (without one) the tokenizer's count of what was sent. */
export interface BilledCall {
  /** The request's `[fake-cell:...]` marker, when it had one. */
  cell?: string;
  model: string;
  kind: 'chat' | 'embeddings';
  stream: boolean;
  shape: AnswerShape;
  /** True when the usage travelled with the answer; false when the client has to count. */
  reported: boolean;
  promptTokens: number;
  completionTokens: number;
  embeddingTokens: number;
  costUsd?: number;
}

interface ShapedAnswer {
  content: string | null;
  refusal?: string;
  toolCalls?: { id: string; type: 'function'; function: { name: string; arguments: string } }[];
  finishReason: string;
  usage: 'openai' | 'openrouter' | 'none';
}

function shapedPluginProject(unicode: boolean): Record<string, unknown> {
  const note = unicode ? ' // Grüße, naïve café ✓ 🚀 日本語' : '';
  return {
    packageName: 'com.example.shaped',
    mainClass: 'com.example.shaped.Main',
    version: '1.0.0',
    description: unicode ? 'Grüße 🚀 — naïve café, 日本語' : 'A shaped answer',
    files: [
      {
        path: 'src/main/java/com/example/shaped/Main.java',
        content: `package com.example.shaped;\n\npublic class Main {${note}\n    public static int answer() { return 42; }\n}\n`,
      },
    ],
  };
}

const sleep = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve) => {
    if (ms <= 0 || signal.aborted) return resolve();
    const onAbort = () => (clearTimeout(timer), resolve());
    const timer = setTimeout(() => (signal.removeEventListener('abort', onAbort), resolve()), ms);
    signal.addEventListener('abort', onAbort, { once: true });
  });

/**
 * A real HTTP server on 127.0.0.1 speaking the OpenAI/OpenRouter chat and
 * embeddings protocol, scriptable per model, counting its sockets.
 */
export class FakeProviderServer {
  readonly requests: ReceivedRequest[] = [];
  /** Every answer that cost something, in the order sent (shaped answers only). */
  readonly billed: BilledCall[] = [];
  private readonly scripts = new Map<string, FakeResponse[]>();
  /** Open sockets and how many requests each is serving right now. */
  private readonly sockets = new Map<Socket, number>();
  private inFlight = 0;
  private readonly tokenizer = new TokenizerService();
  private sequence = 0;

  private constructor(
    private readonly server: Server,
    readonly baseUrl: string,
  ) {}

  static async start(): Promise<FakeProviderServer> {
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    const fake = new FakeProviderServer(server, `http://127.0.0.1:${port}/v1`);
    fake.tokenizer.onModuleInit();
    server.on('connection', (socket) => {
      fake.sockets.set(socket, 0);
      socket.on('close', () => fake.sockets.delete(socket));
    });
    server.on('request', (req, res) => void fake.handle(req, res));
    return fake;
  }

  /** Queue answers for a model (`*` for any model without its own queue). */
  script(model: string, ...responses: FakeResponse[]): this {
    this.scripts.set(model, [...(this.scripts.get(model) ?? []), ...responses]);
    return this;
  }

  /** Sockets currently open to this server (idle keep-alive and pre-opened ones included). */
  openConnections(): number {
    return this.sockets.size;
  }

  /** Sockets carrying a request whose response has not finished: the ones a leak would hold. */
  busyConnections(): number {
    return [...this.sockets.values()].filter((requests) => requests > 0).length;
  }

  /** Requests whose response has neither finished nor been closed. */
  activeRequests(): number {
    return this.inFlight;
  }

  async waitForIdle(timeoutMs = 2_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (this.inFlight > 0) {
      if (Date.now() > deadline) throw new Error(`fake provider still has ${this.inFlight} request(s) in flight`);
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  }

  /**
   * Closes every socket not serving a request (keep-alive ones, and the spare
   * connection undici opens after an abort), so openConnections() then counts only busy ones.
   */
  closeIdleConnections(): void {
    for (const [socket, requests] of this.sockets) if (requests === 0) socket.destroy();
  }

  reset(): void {
    this.scripts.clear();
    this.requests.length = 0;
    this.billed.length = 0;
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve, reject) => this.server.close((error) => (error ? reject(error) : resolve())));
    this.tokenizer.onModuleDestroy();
  }

  /** The counts a real OpenAI server would report for this exchange. */
  usageFor(model: string, messages: ChatMessage[], text: string): { prompt_tokens: number; completion_tokens: number; total_tokens: number } {
    const prompt = this.tokenizer.countMessages(messages, model);
    const completion = this.tokenizer.countText(text, model);
    return { prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion };
  }

  defaultAnswer(body: Pick<ChatBody, 'model' | 'messages' | 'response_format'>): string {
    const lastUser = [...body.messages].reverse().find((message) => message.role === 'user')?.content ?? '';
    const answer = `Fake answer from ${body.model} to: ${lastUser.slice(0, 80)}`;
    return body.response_format?.type === 'json_object' || body.response_format?.type === 'json_schema' ? JSON.stringify({ answer }) : answer;
  }

  private next(model: string | undefined): FakeResponse {
    for (const key of [model ?? '', '*']) {
      const queue = this.scripts.get(key);
      if (queue && queue.length > 0) return queue.shift()!;
    }
    return {};
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const socket = req.socket;
    this.inFlight++;
    this.sockets.set(socket, (this.sockets.get(socket) ?? 0) + 1);
    const closed = new AbortController();
    let counted = true;
    const done = () => {
      if (counted) {
        counted = false;
        this.inFlight--;
        if (this.sockets.has(socket)) this.sockets.set(socket, this.sockets.get(socket)! - 1);
      }
      closed.abort();
    };
    res.on('close', done);
    try {
      const raw = await readBody(req);
      const path = (req.url ?? '').split('?')[0];
      let body: Record<string, unknown> | undefined;
      try {
        body = raw.length > 0 ? (JSON.parse(raw) as Record<string, unknown>) : undefined;
      } catch {
        return sendJson(res, 400, { error: { message: 'invalid JSON body', type: 'invalid_request_error' } });
      }
      const model = typeof body?.model === 'string' ? body.model : undefined;
      const cell = CELL_PATTERN.exec(raw)?.[1];
      this.requests.push({ method: req.method ?? '', path, headers: req.headers, body, model, ...(cell ? { cell } : {}) });

      if (req.method === 'GET' && path === '/v1/models') return this.models(res);
      if (req.method === 'POST' && path === '/v1/chat/completions') return await this.chat(body as unknown as ChatBody, res, closed.signal);
      if (req.method === 'POST' && path === '/v1/embeddings') return await this.embeddings(body ?? {}, res, closed.signal);
      sendJson(res, 404, { error: { message: `no route ${req.method} ${path}`, type: 'invalid_request_error' } });
    } catch (error) {
      if (!res.headersSent) sendJson(res, 500, { error: { message: String(error), type: 'server_error' } });
      else res.destroy();
    }
  }

  private models(res: ServerResponse): void {
    const ids = new Set(['openai/gpt-4o-mini', 'openai/gpt-4o', 'openai/text-embedding-3-small', ...this.scripts.keys()]);
    ids.delete('*');
    sendJson(res, 200, {
      object: 'list',
      data: [...ids].map((id) => ({ id, object: 'model', created: 1_700_000_000, owned_by: 'fake-provider' })),
    });
  }

  private async chat(body: ChatBody, res: ServerResponse, closed: AbortSignal): Promise<void> {
    if (!body || typeof body.model !== 'string' || !Array.isArray(body.messages)) {
      return sendJson(res, 400, { error: { message: 'model and messages are required', type: 'invalid_request_error' } });
    }
    const queued = this.hasScript(body.model);
    // The latest message wins: retrieved passages in a system prompt may carry markers of their own.
    const shape = queued ? undefined : shapeIn(body.messages.map((message) => message.content).reverse());
    if (shape) return this.shapedChat(shape, body, res, closed);
    const scripted = this.next(body.model);
    await sleep(scripted.delayMs ?? 0, closed);
    if (closed.aborted) return;
    if (scripted.status && scripted.status >= 400) return sendError(res, scripted.status);
    if (scripted.body !== undefined) return sendJson(res, scripted.status ?? 200, scripted.body);

    const text = scripted.text ?? this.defaultAnswer(body);
    const reportedModel = scripted.model ?? body.model;
    const usage = this.wireUsage(body, text, scripted);
    const id = `chatcmpl-fake${++this.sequence}`;
    const created = Math.floor(Date.now() / 1000);
    const finishReason = scripted.finishReason === undefined ? 'stop' : scripted.finishReason;

    if (!body.stream) {
      const payload = JSON.stringify({
        id,
        object: 'chat.completion',
        created,
        model: reportedModel,
        choices: [{ index: 0, message: { role: 'assistant', content: text, refusal: null }, logprobs: null, finish_reason: finishReason }],
        ...(usage ? { usage } : {}),
        system_fingerprint: 'fp_fake',
      });
      if (scripted.resetMidStream) {
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) });
        await flushWrite(res, payload.slice(0, Math.floor(payload.length / 2)));
        await sleep(20, closed);
        res.socket?.destroy();
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) });
      res.end(payload);
      return;
    }

    const includeUsage = body.stream_options?.include_usage === true;
    const base = { id, object: 'chat.completion.chunk', created, model: reportedModel, system_fingerprint: 'fp_fake' };
    // OpenAI sends "usage": null on every chunk when include_usage is set, then one usage chunk with no choices.
    const chunk = (choices: unknown[], extra: Record<string, unknown> = {}) =>
      `data: ${JSON.stringify({ ...base, choices, ...(includeUsage ? { usage: null } : {}), ...extra })}\n\n`;
    const pieces = text.match(/\s*\S+/g) ?? [];
    const resetAfter = scripted.resetMidStream ? (scripted.resetAfterChunks ?? 2) : Infinity;

    res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', connection: 'keep-alive' });
    await flushWrite(res, chunk([{ index: 0, delta: { role: 'assistant', content: '', refusal: null }, logprobs: null, finish_reason: null }]));
    for (let i = 0; i < pieces.length && i < resetAfter; i++) {
      await sleep(scripted.chunkDelayMs ?? 0, closed);
      if (closed.aborted) return;
      await flushWrite(res, chunk([{ index: 0, delta: { content: pieces[i] }, logprobs: null, finish_reason: null }]));
    }
    if (scripted.resetMidStream) {
      // Let the client read what was sent, then drop the connection without the terminating chunk.
      await sleep(20, closed);
      res.socket?.destroy();
      return;
    }
    res.write(chunk([{ index: 0, delta: {}, logprobs: null, finish_reason: finishReason }]));
    if (includeUsage && usage) res.write(`data: ${JSON.stringify({ ...base, choices: [], usage })}\n\n`);
    res.end('data: [DONE]\n\n');
  }

  private async embeddings(body: Record<string, unknown>, res: ServerResponse, closed: AbortSignal): Promise<void> {
    const model = typeof body.model === 'string' ? body.model : '';
    const inputs = typeof body.input === 'string' ? [body.input] : Array.isArray(body.input) ? (body.input as unknown[]).map(String) : null;
    if (!model || !inputs) return sendJson(res, 400, { error: { message: 'model and input are required', type: 'invalid_request_error' } });
    const shape = this.hasScript(model) ? undefined : shapeIn(inputs);
    const scripted = shape ? this.embeddingShape(shape, model, inputs) : this.next(model);
    if (shape === 'hang') await sleep(HANG_MS, closed);
    if (shape === 'rate-limited') res.setHeader('retry-after', '1');
    await sleep(scripted.delayMs ?? 0, closed);
    if (closed.aborted) return;
    if (scripted.status && scripted.status >= 400) return sendError(res, scripted.status);
    if (scripted.body !== undefined) return sendJson(res, scripted.status ?? 200, scripted.body);

    const dimensions = typeof body.dimensions === 'number' ? body.dimensions : MODEL_DIMENSIONS[model.replace(/^.*\//, '')];
    const base64 = body.encoding_format === 'base64';
    const omit = scripted.omitUsage || scripted.usage === null;
    // Counted in slices, as the service counts: a real provider's counting never holds the app's event loop.
    const promptTokens = omit ? 0 : await this.tokenizer.countTextsAsync(inputs, model);
    const usage = omit
      ? undefined
      : {
          prompt_tokens: promptTokens,
          total_tokens: promptTokens,
          ...(scripted.cost !== undefined ? { cost: scripted.cost } : {}),
          ...(scripted.usage ?? {}),
        };
    // Hashed in short steps: this server shares its process with the app under test, whose event
    // loop a 200k-character input would otherwise hold for tens of milliseconds.
    const data: Array<{ object: 'embedding'; index: number; embedding: string | number[] }> = [];
    for (const [index, input] of inputs.entries()) {
      const vector = scripted.dense ? denseEmbedding(input, dimensions) : await hashedEmbeddingAsync(input, dimensions);
      data.push({ object: 'embedding', index, embedding: base64 ? Buffer.from(new Float32Array(vector).buffer).toString('base64') : vector });
      await new Promise((resolve) => setImmediate(resolve));
    }
    // Serialised in slices too: 64 dense vectors are ~2 MB of JSON, 20-40 ms in one call.
    const payload = await stringifyInSlices({ object: 'list', model: scripted.model ?? model, data, ...(usage ? { usage } : {}) });
    if (closed.aborted) return;
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': payload.length });
    res.end(payload);
  }

  private hasScript(model: string | undefined): boolean {
    return [model ?? '', '*'].some((key) => (this.scripts.get(key)?.length ?? 0) > 0);
  }

  /** Embeddings answer every content shape normally; usage and failure shapes apply. */
  private embeddingShape(shape: AnswerShape, model: string, inputs: string[]): FakeResponse {
    if (shape === 'error-200') return { body: { error: { message: `Upstream failed. ${RAW_BODY_MARKER}`, code: 502 } } };
    if (shape === 'rate-limited') return { status: 429 };
    if (shape === 'server-error') return { status: 500 };
    if (shape === 'hang') return { status: 504 };
    const embeddingTokens = inputs.reduce((sum, input) => sum + this.tokenizer.countText(input, model), 0);
    const missing = shape === 'usage-missing' || shape === 'stream-no-usage';
    const openrouter = shape === 'usage-openrouter';
    this.billed.push({
      ...cellOf(inputs),
      model,
      kind: 'embeddings',
      stream: false,
      shape,
      reported: !missing,
      promptTokens: 0,
      completionTokens: 0,
      embeddingTokens,
      ...(openrouter ? { costUsd: SHAPE_COST_USD } : {}),
    });
    return { ...(missing ? { omitUsage: true } : {}), ...(openrouter ? { cost: SHAPE_COST_USD } : {}) };
  }

  /** The JSON a feature asking for JSON accepts: an intent, a plugin project, or a generic object. */
  private jsonPayload(body: ChatBody, unicode: boolean): Record<string, unknown> {
    const schema = body.response_format?.json_schema?.name;
    const system = body.messages.find((message) => message.role === 'system')?.content ?? '';
    if (schema === 'plugin_project' || system.includes('"packageName"')) return shapedPluginProject(unicode);
    if (schema === 'chat_intent' || system.includes('{"type":"info"}')) return { type: 'info' };
    return { answer: unicode ? 'Grüße aus Köln ✓ 🚀🎮 日本語' : `Fake answer from ${body.model}` };
  }

  /**
   * A text answer (a request not asking for JSON) ends with the request's markers, as a model
   * echoing the request would, so a feature that feeds it into its next call keeps the shape.
   */
  private shapedAnswer(shape: AnswerShape, body: ChatBody): ShapedAnswer {
    // A model follows the system prompt's "answer with JSON" whether or not response_format said so.
    const system = body.messages.find((message) => message.role === 'system')?.content ?? '';
    const json = body.response_format?.type === 'json_object' || body.response_format?.type === 'json_schema' || /\bJSON\b/.test(system);
    const answer = this.shapedContent(shape, body, json);
    if (json) return answer;
    const echo = ` ${shapeMarker(shape, cellOf(body.messages.map((message) => message.content).reverse()).cell)}`;
    if (answer.content) return { ...answer, content: answer.content + echo };
    if (answer.refusal) return { ...answer, refusal: answer.refusal + echo };
    return answer;
  }

  private shapedContent(shape: AnswerShape, body: ChatBody, json: boolean): ShapedAnswer {
    const payload = JSON.stringify(this.jsonPayload(body, shape === 'unicode'), null, 1);
    const plain = json ? payload : `Fake answer from ${body.model}: plugins register commands in plugin.yml and handle them in onCommand.`;
    const ok = (content: string | null, extra: Partial<ShapedAnswer> = {}): ShapedAnswer => ({ content, finishReason: 'stop', usage: 'openai', ...extra });
    switch (shape) {
      case 'json-whole':
        return ok(payload);
      case 'json-fenced':
        return ok('```json\n' + payload + '\n```');
      case 'json-prose':
        return ok(`Sure! Here is what you asked for:\n${payload}\nLet me know if you need anything else.`);
      case 'json-truncated':
        return ok(payload.slice(0, Math.floor(payload.length * 0.6)), { finishReason: 'length' });
      case 'json-invalid':
        return ok(payload.replace(/"([A-Za-z]+)":/g, '$1:').replace(/}\s*$/, ',}'));
      case 'prose':
        return ok('Happy to help! Bukkit plugins register commands in plugin.yml and handle them in onCommand; events go through listeners.');
      case 'empty':
        return ok('');
      case 'tool-calls':
        return ok(null, {
          finishReason: 'tool_calls',
          toolCalls: [{ id: 'call_fake1', type: 'function', function: { name: 'lookup_docs', arguments: '{"topic":"commands"}' } }],
        });
      case 'refusal':
        return ok(null, { refusal: "I'm sorry, but I can't help with that request." });
      case 'unicode':
        return ok(json ? payload : 'Grüße aus Köln ✓ 🚀🎮 日本語のテキスト — naïve café');
      case 'usage-openrouter':
        return ok(plain, { usage: 'openrouter' });
      case 'usage-missing':
      case 'stream-no-usage':
        return ok(plain, { usage: 'none' });
      default:
        return ok(plain);
    }
  }

  private async shapedChat(shape: AnswerShape, body: ChatBody, res: ServerResponse, closed: AbortSignal): Promise<void> {
    if (shape === 'rate-limited') {
      res.setHeader('retry-after', '1');
      return sendError(res, 429);
    }
    if (shape === 'server-error') return sendError(res, 500);
    if (shape === 'no-structured-output' && body.response_format) {
      return sendJson(res, 400, { error: { message: `response_format is not supported by this model. ${RAW_BODY_MARKER}`, type: 'invalid_request_error', code: 400 } });
    }
    if (shape === 'hang') {
      await sleep(HANG_MS, closed);
      if (!closed.aborted) sendError(res, 504);
      return;
    }
    const upstreamError = { error: { message: `Upstream model failed. ${RAW_BODY_MARKER}`, code: 502 } };
    // Without a stream, an error event is OpenRouter's HTTP 200 carrying {"error": ...}.
    if ((shape === 'error-200' || shape === 'stream-error-event') && !body.stream) return sendJson(res, 200, upstreamError);

    const answer = this.shapedAnswer(shape, body);
    const billedText = answer.content ?? answer.refusal ?? answer.toolCalls?.map((call) => call.function.arguments).join('') ?? '';
    const counted = this.usageFor(body.model, body.messages, billedText);
    const cached = Math.floor(counted.prompt_tokens / 2);
    const reasoning = Math.min(counted.completion_tokens, 3);
    const usage: WireUsage | undefined =
      answer.usage === 'none'
        ? undefined
        : answer.usage === 'openrouter'
          ? { ...counted, cost: SHAPE_COST_USD, prompt_tokens_details: { cached_tokens: cached }, completion_tokens_details: { reasoning_tokens: reasoning } }
          : { ...counted, prompt_tokens_details: { cached_tokens: 0, audio_tokens: 0 }, completion_tokens_details: { reasoning_tokens: 0, audio_tokens: 0 } };
    const bill = (sentText: string, reported: boolean) =>
      this.billed.push({
        ...cellOf(body.messages.map((message) => message.content).reverse()),
        model: body.model,
        kind: 'chat',
        stream: body.stream === true,
        shape,
        reported,
        promptTokens: counted.prompt_tokens,
        completionTokens: reported ? counted.completion_tokens : this.tokenizer.countText(sentText, body.model),
        embeddingTokens: 0,
        ...(reported && answer.usage === 'openrouter' ? { costUsd: SHAPE_COST_USD } : {}),
      });
    const id = `chatcmpl-fake${++this.sequence}`;
    const created = Math.floor(Date.now() / 1000);
    const message = {
      role: 'assistant',
      content: answer.content,
      refusal: answer.refusal ?? null,
      ...(answer.toolCalls ? { tool_calls: answer.toolCalls } : {}),
    };

    if (!body.stream) {
      const payload = JSON.stringify({
        id,
        object: 'chat.completion',
        created,
        model: body.model,
        choices: [{ index: 0, message, logprobs: null, finish_reason: answer.finishReason }],
        ...(usage ? { usage } : {}),
      });
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) });
      if (shape === 'stream-cut') {
        // The body stops half-way: the client never sees the usage, so nothing it can count was billed.
        await flushWrite(res, payload.slice(0, Math.floor(payload.length / 2)));
        await sleep(20, closed);
        res.socket?.destroy();
        return;
      }
      bill(billedText, usage !== undefined);
      res.end(payload);
      return;
    }

    const includeUsage = body.stream_options?.include_usage === true && usage !== undefined;
    const base = { id, object: 'chat.completion.chunk', created, model: body.model };
    const chunk = (delta: Record<string, unknown>, finishReason: string | null = null) =>
      `data: ${JSON.stringify({ ...base, choices: [{ index: 0, delta, logprobs: null, finish_reason: finishReason }] })}\n\n`;
    res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', connection: 'keep-alive' });
    if (shape === 'error-200') {
      await flushWrite(res, `data: ${JSON.stringify(upstreamError)}\n\n`);
      res.end();
      return;
    }
    await flushWrite(res, chunk({ role: 'assistant', content: '' }));
    const field = answer.content !== null ? 'content' : answer.refusal !== undefined ? 'refusal' : undefined;
    const pieces = field ? ((field === 'content' ? answer.content : answer.refusal)!.match(/\s*\S+/g) ?? []) : [];
    const stopAfter = shape === 'stream-cut' || shape === 'stream-error-event' ? 2 : Infinity;
    let sent = '';
    for (let i = 0; i < pieces.length && i < stopAfter; i++) {
      await sleep(shape === 'stream-slow' ? SLOW_CHUNK_MS : 0, closed);
      if (closed.aborted) break;
      sent += pieces[i];
      await flushWrite(res, chunk({ [field!]: pieces[i] }));
    }
    if (closed.aborted || shape === 'stream-cut' || shape === 'stream-error-event') {
      // What reached the client is all it can count: prompt plus the text it got.
      bill(sent, false);
      if (closed.aborted) return;
      if (shape === 'stream-error-event') {
        await flushWrite(res, `data: ${JSON.stringify(upstreamError)}\n\n`);
        res.end();
        return;
      }
      await sleep(20, closed);
      res.socket?.destroy();
      return;
    }
    if (answer.toolCalls) {
      await flushWrite(res, chunk({ tool_calls: answer.toolCalls.map((call, index) => ({ index, ...call })) }));
    }
    res.write(chunk({}, answer.finishReason));
    if (includeUsage) res.write(`data: ${JSON.stringify({ ...base, choices: [], usage })}\n\n`);
    bill(billedText, includeUsage);
    res.end('data: [DONE]\n\n');
  }

  private wireUsage(body: ChatBody, text: string, scripted: FakeResponse): WireUsage | undefined {
    if (scripted.omitUsage || scripted.usage === null) return undefined;
    const counted = this.usageFor(body.model, body.messages, text);
    const usage: WireUsage = {
      ...counted,
      prompt_tokens_details: { cached_tokens: scripted.cachedTokens ?? 0, audio_tokens: 0 },
      completion_tokens_details: {
        reasoning_tokens: scripted.reasoningTokens ?? 0,
        audio_tokens: 0,
        accepted_prediction_tokens: 0,
        rejected_prediction_tokens: 0,
      },
    };
    if (scripted.cost !== undefined) usage.cost = scripted.cost;
    return { ...usage, ...(scripted.usage ?? {}) };
  }
}

/** The last marker of the first text holding one (a question comes after the passages quoted for it). */
function shapeIn(texts: readonly unknown[]): AnswerShape | undefined {
  for (const text of texts) {
    const name = typeof text === 'string' ? [...text.matchAll(new RegExp(SHAPE_PATTERN, 'g'))].at(-1)?.[1] : undefined;
    if (name && (ANSWER_SHAPES as readonly string[]).includes(name)) return name as AnswerShape;
  }
  return undefined;
}

function cellOf(texts: readonly unknown[]): { cell?: string } {
  for (const text of texts) {
    const cell = typeof text === 'string' ? CELL_PATTERN.exec(text)?.[1] : undefined;
    if (cell) return { cell };
  }
  return {};
}

/** A unit vector of pseudo-random full-precision floats, the same for the same text. */
function denseEmbedding(text: string, dimensions = HASHED_EMBEDDING_DIMENSIONS): number[] {
  let state = createHash('sha256').update(text).digest().readUInt32LE(0);
  const next = () => {
    // mulberry32
    state = (state + 0x6d2b79f5) >>> 0;
    let t = Math.imul(state ^ (state >>> 15), 1 | state);
    t ^= t + Math.imul(t ^ (t >>> 7), 61 | t);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const vector = Array.from({ length: dimensions }, () => next() * 2 - 1);
  const norm = Math.sqrt(vector.reduce((sum, value) => sum + value * value, 0));
  return vector.map((value) => value / norm);
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function flushWrite(res: ServerResponse, data: string): Promise<void> {
  return new Promise((resolve) => {
    if (res.destroyed) return resolve();
    res.write(data, () => resolve());
  });
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const payload = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) });
  res.end(payload);
}

const ERROR_TYPES: Record<number, string> = {
  400: 'invalid_request_error',
  401: 'authentication_error',
  403: 'permission_error',
  404: 'not_found_error',
  422: 'invalid_request_error',
  429: 'rate_limit_error',
};

function sendError(res: ServerResponse, status: number): void {
  sendJson(res, status, {
    error: {
      message: `Fake provider error ${status}. ${RAW_BODY_MARKER}`,
      type: ERROR_TYPES[status] ?? 'server_error',
      code: status,
    },
  });
}
