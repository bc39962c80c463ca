import { createServer, Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Page } from 'playwright-core';
import request from 'supertest';
import { CORS_ALLOWED_HEADERS } from '../src/common/http-security';
import { HeadlessChromium, launchChromium } from './support/headless-chromium';
import { createTestApp, TestApp } from './support/test-app';

// page.evaluate callbacks run in Chromium; this program has no DOM lib.
declare const fetch: (url: string, init?: Record<string, unknown>) => Promise<{ status: number; headers: { get(name: string): string | null }; json(): Promise<any> }>;

interface BrowserCall {
  status?: number;
  body?: any;
  requestId?: string | null;
  rateLimitRemaining?: string | null;
  error?: string;
}

/** A page on its own origin (another port, and the host name localhost) that knows nothing of the API. */
async function startFrontend(): Promise<{ origin: string; server: Server }> {
  const server = createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    res.end('<!doctype html><title>frontend</title><p>seed frontend</p>');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { origin: `http://localhost:${(server.address() as AddressInfo).port}`, server };
}

async function listen(testApp: TestApp): Promise<string> {
  await testApp.app.listen(0, '127.0.0.1');
  return `http://127.0.0.1:${(testApp.app.getHttpServer().address() as AddressInfo).port}`;
}

describe('CORS for a browser frontend (headless Chromium)', () => {
  let browser: HeadlessChromium;
  let frontend: { origin: string; server: Server };
  const apps: TestApp[] = [];
  let page: Page;

  beforeAll(async () => {
    [browser, frontend] = await Promise.all([launchChromium(), startFrontend()]);
  });

  afterAll(async () => {
    await browser?.close();
    await new Promise((resolve) => frontend?.server.close(resolve));
    for (const app of apps) await app.close();
  });

  beforeEach(async () => {
    page = await browser.context.newPage();
  });

  afterEach(() => page.close());

  async function start(overrides: Parameters<typeof createTestApp>[0] = {}): Promise<{ testApp: TestApp; api: string }> {
    const testApp = await createTestApp(overrides);
    apps.push(testApp);
    return { testApp, api: await listen(testApp) };
  }

  /** Runs fetch in the page and reports what the page's script could see. */
  const browserFetch = (url: string, init: Record<string, unknown>): Promise<BrowserCall> =>
    page.evaluate(
      async ([target, options]) => {
        try {
          const response = await fetch(target as string, options as Record<string, unknown>);
          return {
            status: response.status,
            body: await response.json(),
            requestId: response.headers.get('x-request-id'),
            rateLimitRemaining: response.headers.get('x-ratelimit-remaining'),
          };
        } catch (error) {
          return { error: String(error) };
        }
      },
      [url, init] as const,
    );

  it('with CORS_ORIGINS unset, a page on a local development origin calls the API on another (preflighted, with a key)', async () => {
    const { testApp, api } = await start();
    await page.goto(frontend.origin);

    const called = await browserFetch(`${api}/chat`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${testApp.adminKey}`, 'idempotency-key': 'browser-turn-1' },
      body: JSON.stringify({ user_id: 'browser-user', message: 'Hello from the frontend' }),
    });
    expect(called.error).toBeUndefined();
    expect(called.status).toBe(200);
    expect(called.body).toMatchObject({ stage: 'response', token_usage: { total_tokens: expect.any(Number) } });
    expect(called.requestId).toMatch(/.+/);
    expect(called.rateLimitRemaining).toMatch(/^\d+$/);

    // x-api-key works the same way, and a GET of seed 000's window endpoint too.
    const usage = await browserFetch(`${api}/api/v1/tokens/usage/browser-user`, { headers: { 'x-api-key': testApp.adminKey } });
    expect(usage).toMatchObject({ status: 200, body: { user_id: 'browser-user' } });
    expect(usage.body.current_usage).toBe(called.body.token_usage.total_tokens);

    // The same preflight as the browser sent, answered as a browser needs it.
    const preflight = await request(testApp.http)
      .options('/chat')
      .set('origin', frontend.origin)
      .set('access-control-request-method', 'POST')
      .set('access-control-request-headers', 'authorization,content-type,idempotency-key,x-api-key')
      .expect(204);
    expect(preflight.headers['access-control-allow-origin']).toBe(frontend.origin);
    expect(preflight.headers['access-control-allow-methods']).toContain('POST');
    const allowedHeaders = preflight.headers['access-control-allow-headers'].split(',').map((name: string) => name.trim());
    expect(allowedHeaders).toEqual(expect.arrayContaining(['authorization', 'x-api-key', 'idempotency-key', 'content-type']));
    expect(allowedHeaders).toEqual(expect.arrayContaining(CORS_ALLOWED_HEADERS));
    expect(preflight.headers['access-control-max-age']).toBe('600');
  }, 120_000);

  it('answers a 401 the page can read when the key is missing, and refuses origins CORS_ORIGINS does not list', async () => {
    const { api } = await start();
    await page.goto(frontend.origin);
    // Seed 001's example as written, cross-origin: a simple request (text/plain, no preflight) without a key.
    const anonymous = await browserFetch(`${api}/chat`, { method: 'POST', body: JSON.stringify({ user_id: 'u1', message: 'hi' }) });
    expect(anonymous).toMatchObject({ status: 401, body: { statusCode: 401, message: expect.stringContaining('API key') } });

    const { testApp: listed, api: listedApi } = await start({ CORS_ORIGINS: 'https://app.example.com' });
    const refused = await browserFetch(`${listedApi}/api/v1/tokens/usage/u1`, { headers: { 'x-api-key': listed.adminKey } });
    expect(refused.status).toBeUndefined();
    expect(refused.error).toMatch(/TypeError/);
    const preflight = await request(listed.http)
      .options('/api/v1/tokens/usage/u1')
      .set('origin', frontend.origin)
      .set('access-control-request-method', 'GET');
    expect(preflight.headers['access-control-allow-origin']).toBeUndefined();
  }, 120_000);

  it("runs seed 001's fetch('/chat') example verbatim on the service's own origin when authentication is off (development)", async () => {
    const { api } = await start({ AUTH_DISABLED: true });
    await page.goto(`${api}/health`);
    const seen = await page.evaluate(async () => {
      const chatInput = { user_id: 'seed-001-user', message: 'Plan my study week' };
      // Seed 001, verbatim:
      const response = await fetch('/chat', {
        method: 'POST',
        body: JSON.stringify(chatInput),
      });

      const data = await response.json();
      return { status: response.status, data };
    });
    expect(seen.status).toBe(200);
    expect(seen.data).toMatchObject({ stage: 'response', conversation_id: expect.stringMatching(/^conv_/) });
    expect(seen.data.token_usage.total_tokens).toBeGreaterThan(0);
    expect(seen.data.token_usage.cost_estimate_usd).toEqual(expect.any(Number));
  }, 120_000);
});
