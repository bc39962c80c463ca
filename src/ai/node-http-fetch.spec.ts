import { createServer, IncomingMessage, Server, ServerResponse } from 'node:http';
import { AddressInfo } from 'node:net';
import { gzipSync } from 'node:zlib';
import { withTurnCount } from '../../test/support/event-loop-turns';
import { createNodeHttpFetch } from './node-http-fetch';

type Handler = (request: IncomingMessage, body: string, response: ServerResponse) => void;

describe(createNodeHttpFetch.name, () => {
  let server: Server;
  let base: string;
  let handler: Handler;
  const sockets = new Set<unknown>();
  const fetchOver = createNodeHttpFetch();

  beforeAll(async () => {
    server = createServer((request, response) => {
      const chunks: Buffer[] = [];
      request.on('data', (chunk: Buffer) => chunks.push(chunk));
      request.on('end', () => handler(request, Buffer.concat(chunks).toString(), response));
    });
    server.on('connection', (socket) => sockets.add(socket));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });
  beforeEach(() => sockets.clear());

  it('sends method, headers and body, and reads status, headers and a JSON body', async () => {
    handler = (request, body, response) => {
      response.setHeader('set-cookie', ['a=1', 'b=2']);
      response.writeHead(201, 'Made', { 'content-type': 'application/json', 'x-echo': String(request.headers['x-test']) });
      response.end(JSON.stringify({ method: request.method, url: request.url, body, length: request.headers['content-length'] }));
    };
    const response = await fetchOver(`${base}/v1/things?x=1`, { method: 'post', headers: new Headers({ 'x-test': 'yes' }), body: '{"é":1}' });
    expect(response.status).toBe(201);
    expect(response.statusText).toBe('Made');
    expect(response.headers.get('x-echo')).toBe('yes');
    expect(response.headers.getSetCookie()).toEqual(['a=1', 'b=2']);
    expect(await response.json()).toEqual({ method: 'POST', url: '/v1/things?x=1', body: '{"é":1}', length: '8' });
  });

  it('parses a large JSON answer across turns of the event loop, to the same value', async () => {
    const answer = { object: 'list', data: Array.from({ length: 64 }, (_, index) => ({ index, embedding: Array.from({ length: 1536 }, (_, i) => Math.cos(index + i)) })) };
    handler = (_request, _body, response) => {
      response.writeHead(200, { 'content-type': 'application/json; charset=utf-8' });
      response.end('\ufeff' + JSON.stringify(answer));
    };
    const response = await fetchOver(`${base}/v1/embeddings`, { method: 'POST', body: '{}' });
    const { value, turns } = await withTurnCount(() => response.json());
    expect(value).toEqual(answer);
    expect(turns).toBeGreaterThan(0);
  });

  it('keeps the connection alive across sequential calls', async () => {
    handler = (_request, _body, response) => response.end('ok');
    const ownAgents = createNodeHttpFetch();
    for (let i = 0; i < 5; i += 1) expect(await (await ownAgents(`${base}/`)).text()).toBe('ok');
    expect(sockets.size).toBe(1);
  });

  it("drops an idle socket a second before the server's announced keep-alive timeout, so it is never reused as the server closes it", async () => {
    handler = (_request, _body, response) => response.end('ok');
    const previous = server.keepAliveTimeout;
    server.keepAliveTimeout = 2_000; // announced as `Keep-Alive: timeout=2`
    try {
      const ownAgents = createNodeHttpFetch();
      const first = await ownAgents(`${base}/`);
      expect(first.headers.get('keep-alive')).toBe('timeout=2');
      await first.text();
      await new Promise((resolve) => setTimeout(resolve, 1_300));
      expect(await (await ownAgents(`${base}/`)).text()).toBe('ok');
      expect(sockets.size).toBe(2);
    } finally {
      server.keepAliveTimeout = previous;
    }
  });

  it('decompresses gzip bodies and drops the encoding headers', async () => {
    const payload = JSON.stringify({ text: 'x'.repeat(5000) });
    handler = (request, _body, response) => {
      expect(request.headers['accept-encoding']).toContain('gzip');
      const zipped = gzipSync(payload);
      response.writeHead(200, { 'content-type': 'application/json', 'content-encoding': 'gzip', 'content-length': zipped.length }).end(zipped);
    };
    const response = await fetchOver(`${base}/`);
    expect(response.headers.get('content-encoding')).toBeNull();
    expect(await response.text()).toBe(payload);
  });

  it('streams an event stream chunk by chunk, before the server has finished', async () => {
    let finish!: () => void;
    handler = (_request, _body, response) => {
      response.writeHead(200, { 'content-type': 'text/event-stream' });
      response.write('data: one\n\n');
      finish = () => response.end('data: two\n\n');
    };
    const response = await fetchOver(`${base}/`);
    const reader = response.body!.getReader();
    const first = await reader.read();
    expect(Buffer.from(first.value!).toString()).toBe('data: one\n\n');
    finish();
    let rest = '';
    for (let next = await reader.read(); !next.done; next = await reader.read()) rest += Buffer.from(next.value).toString();
    expect(rest).toBe('data: two\n\n');
  });

  it('rejects with an AbortError when aborted before the answer, and frees the socket', async () => {
    const closed = new Promise<void>((resolve) => {
      handler = (request) => request.socket.once('close', resolve);
    });
    const controller = new AbortController();
    const pending = fetchOver(`${base}/`, { signal: controller.signal });
    setImmediate(() => controller.abort());
    await expect(pending).rejects.toMatchObject({ name: 'AbortError' });
    await closed;
  });

  it('errors a streamed body with the abort reason when aborted mid-stream', async () => {
    handler = (_request, _body, response) => {
      response.writeHead(200, { 'content-type': 'text/event-stream' });
      response.write('data: one\n\n');
    };
    const controller = new AbortController();
    const response = await fetchOver(`${base}/`, { signal: controller.signal });
    const reader = response.body!.getReader();
    await reader.read();
    controller.abort();
    await expect(reader.read()).rejects.toMatchObject({ name: 'AbortError' });
  });

  it('rejects an already aborted signal without connecting', async () => {
    handler = () => {
      throw new Error('must not be called');
    };
    await expect(fetchOver(`${base}/`, { signal: AbortSignal.abort() })).rejects.toMatchObject({ name: 'AbortError' });
    expect(sockets.size).toBe(0);
  });

  it('reports a refused connection as fetch does: TypeError with the socket error as cause', async () => {
    const closedServer = createServer();
    await new Promise<void>((resolve) => closedServer.listen(0, '127.0.0.1', resolve));
    const { port } = closedServer.address() as AddressInfo;
    await new Promise((resolve) => closedServer.close(resolve));
    const failure = await fetchOver(`http://127.0.0.1:${port}/`).catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(TypeError);
    expect((failure as { cause?: { code?: string } }).cause?.code).toBe('ECONNREFUSED');
  });

  it('reports a connection cut mid-body as a failure, not a short body', async () => {
    handler = (_request, _body, response) => {
      response.writeHead(200, { 'content-type': 'application/json', 'content-length': '100' });
      response.write('{"partial":');
      setImmediate(() => response.socket?.destroy());
    };
    await expect(fetchOver(`${base}/`)).rejects.toBeInstanceOf(TypeError);
  });
});
