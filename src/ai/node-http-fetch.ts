import { Agent as HttpAgent, IncomingMessage, request as httpRequest, RequestOptions } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { Readable } from 'node:stream';
import { createBrotliDecompress, createGunzip, createInflate } from 'node:zlib';
import { parseInSlices, SLICED_PARSE_MIN_CHARS } from '../common/sliced-json';

export interface NodeHttpFetchOptions {
  /** Idle keep-alive sockets kept per upstream host. */
  maxFreeSockets?: number;
}

/** Response bodies streamed to the caller as they arrive; everything else is read whole first. */
const STREAMED_CONTENT_TYPE = /^text\/event-stream/i;
const NO_BODY_STATUS = new Set([101, 204, 205, 304]);
/** How long a pooled socket may sit idle (shorter when the server announces less). */
const IDLE_SOCKET_TIMEOUT_MS = 30_000;

const JSON_CONTENT_TYPE = /^application\/(?:[\w.+-]*\+)?json/i;

/**
 * A large JSON answer (an embeddings batch: 64 vectors of 3,072 floats are ~4 MB) whose json()
 * parses it across turns of the event loop, where one JSON.parse call would hold it for 25-45 ms.
 */
function slicedJsonResponse(bytes: Buffer, init: ResponseInit): Response {
  const response = new Response(bytes, init);
  const json = async (): Promise<unknown> => {
    const text = bytes.toString('utf8');
    return parseInSlices(text.charCodeAt(0) === 0xfeff ? text.slice(1) : text);
  };
  Object.defineProperty(response, 'json', { value: json });
  return response;
}

const abortError = (signal: AbortSignal): Error =>
  signal.reason instanceof Error ? signal.reason : new DOMException('This operation was aborted', 'AbortError');

/**
 * A `fetch` for the openai SDK over node:http(s) with keep-alive agents. The SDK stays the
 * provider client (request building, errors, SSE parsing); only the transport changes.
 * Node's built-in fetch spends most of a provider call's CPU on WHATWG stream plumbing
 * (bench/provider-transport.ts measures both); here a JSON answer is read into one buffer,
 * and only an event stream is handed over as a web stream.
 *
 * Supported: string/Buffer/Uint8Array bodies, AbortSignal (before and during the body),
 * gzip/deflate/br responses. Any other body type goes to the built-in fetch.
 */
export function createNodeHttpFetch(options: NodeHttpFetchOptions = {}): typeof fetch {
  // `timeout` closes a socket idle in the pool for that long; it also lets Node honour a server's
  // `Keep-Alive: timeout=N` (the socket is dropped a second before N), which it ignores without
  // one. Otherwise a socket the provider is closing can be reused: ECONNRESET, a failed call.
  // (On a socket in use it only emits 'timeout', which nothing here turns into an abort.)
  const agentOptions = { keepAlive: true, maxFreeSockets: options.maxFreeSockets ?? 256, scheduling: 'lifo' as const, timeout: IDLE_SOCKET_TIMEOUT_MS };
  const agents = { 'http:': new HttpAgent(agentOptions), 'https:': new HttpsAgent(agentOptions) };

  return async function nodeHttpFetch(input: string | URL | Request, init: RequestInit = {}): Promise<Response> {
    const body = init.body;
    const plainBody = body === undefined || body === null || typeof body === 'string' || body instanceof Uint8Array;
    if (input instanceof Request || !plainBody) return fetch(input, init);
    const url = input instanceof URL ? input : new URL(input);
    if (url.protocol !== 'http:' && url.protocol !== 'https:') return fetch(input, init);
    const signal = init.signal ?? undefined;
    if (signal?.aborted) throw abortError(signal);

    const headers: Record<string, string> = {};
    new Headers(init.headers).forEach((value, name) => (headers[name] = value));
    headers['accept-encoding'] ??= 'gzip, deflate, br';
    if (body !== undefined && body !== null) headers['content-length'] = String(Buffer.byteLength(body));

    const requestOptions: RequestOptions = {
      agent: agents[url.protocol],
      method: (init.method ?? 'GET').toUpperCase(),
      hostname: url.hostname.replace(/^\[(.*)\]$/, '$1'),
      port: url.port || undefined,
      path: `${url.pathname}${url.search}`,
      headers,
    };
    const send = url.protocol === 'https:' ? httpsRequest : httpRequest;

    return new Promise<Response>((resolve, reject) => {
      let settled = false;
      let response: IncomingMessage | undefined;
      const onAbort = () => {
        const error = abortError(signal!);
        // Destroying the response (or the request before one came) frees the socket; a body
        // being read errors with the abort reason.
        response?.destroy(error);
        request.destroy(error);
        if (!settled) {
          settled = true;
          reject(error);
        }
      };
      const done = () => signal?.removeEventListener('abort', onAbort);
      const fail = (error: Error) => {
        done();
        if (settled) return;
        settled = true;
        // Like undici: a transport failure is a TypeError with the socket error as its cause.
        reject(error.name === 'AbortError' ? error : new TypeError('fetch failed', { cause: error }));
      };

      const request = send(requestOptions, (incoming) => {
        response = incoming;
        const status = incoming.statusCode ?? 0;
        const responseHeaders = toHeaders(incoming);
        const decoded = decode(incoming, responseHeaders, status);
        decoded.on('error', fail);
        const respond = (payload: ConstructorParameters<typeof Response>[0]) => {
          if (settled) return;
          settled = true;
          const init = { status, statusText: incoming.statusMessage, headers: responseHeaders };
          const sliced = Buffer.isBuffer(payload) && payload.length >= SLICED_PARSE_MIN_CHARS && JSON_CONTENT_TYPE.test(responseHeaders.get('content-type') ?? '');
          resolve(sliced ? slicedJsonResponse(payload, init) : new Response(payload, init));
        };
        if (NO_BODY_STATUS.has(status) || requestOptions.method === 'HEAD') {
          decoded.resume();
          decoded.once('end', done);
          respond(null);
          return;
        }
        if (STREAMED_CONTENT_TYPE.test(responseHeaders.get('content-type') ?? '')) {
          // Aborting destroys the socket, which errors the web stream the SDK is reading.
          decoded.once('close', done);
          respond(Readable.toWeb(decoded) as ReadableStream<Uint8Array>);
          return;
        }
        const chunks: Buffer[] = [];
        decoded.on('data', (chunk: Buffer) => chunks.push(chunk));
        decoded.once('end', () => {
          done();
          respond(Buffer.concat(chunks));
        });
      });
      request.on('error', fail);
      signal?.addEventListener('abort', onAbort, { once: true });
      request.end(body ?? undefined);
    });
  } as typeof fetch;
}

function toHeaders(incoming: IncomingMessage): Headers {
  const headers = new Headers();
  const raw = incoming.rawHeaders;
  for (let i = 0; i < raw.length; i += 2) headers.append(raw[i], raw[i + 1]);
  return headers;
}

/** Decompresses like fetch does, and drops the headers that described the compressed body. */
function decode(incoming: IncomingMessage, headers: Headers, status: number): Readable {
  const encoding = headers.get('content-encoding')?.trim().toLowerCase();
  const decoder =
    encoding === 'gzip' || encoding === 'x-gzip' ? createGunzip() : encoding === 'deflate' ? createInflate() : encoding === 'br' ? createBrotliDecompress() : undefined;
  if (!decoder || NO_BODY_STATUS.has(status)) return incoming;
  headers.delete('content-encoding');
  headers.delete('content-length');
  incoming.on('error', (error) => decoder.destroy(error));
  return incoming.pipe(decoder);
}
