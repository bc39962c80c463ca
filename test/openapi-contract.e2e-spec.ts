import { execFile } from 'node:child_process';
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import request from 'supertest';
import ts from 'typescript';
import type { AddressInfo } from 'node:net';
import { OpenApiResponseValidator } from './support/openapi-response-validator';
import { createTestApp, TestApp } from './support/test-app';

const execFileAsync = promisify(execFile);
const ROOT = join(__dirname, '..');
const CLIENT_SOURCE = join(__dirname, 'support', 'openapi-typed-client.ts');

function cliOf(pkg: string): string {
  return join(dirname(require.resolve(`${pkg}/package.json`)), 'bin', 'cli.js');
}

/** Runs a package's CLI with node; offline and quiet: no telemetry, no update check, no colours. */
async function runCli(pkg: string, args: string[]): Promise<{ stdout: string; stderr: string; code: number }> {
  const env = { ...process.env, REDOCLY_TELEMETRY: 'off', REDOCLY_SUPPRESS_UPDATE_NOTICE: 'true', NO_COLOR: '1', FORCE_COLOR: '0' };
  try {
    const { stdout, stderr } = await execFileAsync(process.execPath, [cliOf(pkg), ...args], { cwd: ROOT, env, maxBuffer: 64 * 1024 * 1024 });
    return { stdout, stderr, code: 0 };
  } catch (error) {
    const failed = error as { stdout?: string; stderr?: string; code?: number };
    return { stdout: failed.stdout ?? '', stderr: failed.stderr ?? '', code: typeof failed.code === 'number' ? failed.code : 1 };
  }
}

interface OpenApiOperation {
  summary?: string;
  responses: Record<string, { content?: Record<string, { schema?: unknown }>; headers?: unknown }>;
}

describe('OpenAPI document (/docs-json)', () => {
  let testApp: TestApp;
  let dir: string;
  let documentPath: string;
  let document: { paths: Record<string, Record<string, OpenApiOperation>> };

  beforeAll(async () => {
    testApp = await createTestApp();
    document = (await request(testApp.http).get('/docs-json').expect(200)).body;
    // Inside the repository (test-artifacts/ is ignored), so the generated client resolves openapi-fetch.
    await mkdir(join(ROOT, 'test-artifacts'), { recursive: true });
    dir = await mkdtemp(join(ROOT, 'test-artifacts', 'openapi-'));
    documentPath = join(dir, 'openapi.json');
    await writeFile(documentPath, JSON.stringify(document, null, 2));
  });

  afterAll(async () => {
    await testApp?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('documents for every operation a success body, error bodies with schemas, and a summary', () => {
    const gaps: string[] = [];
    for (const [path, operations] of Object.entries(document.paths)) {
      for (const [method, operation] of Object.entries(operations)) {
        const name = `${method.toUpperCase()} ${path}`;
        const statuses = Object.keys(operation.responses);
        if (!operation.summary || /seed/i.test(operation.summary)) gaps.push(`${name}: summary ${JSON.stringify(operation.summary)}`);
        if (statuses.some((status) => /X/.test(status))) gaps.push(`${name}: a range response (${statuses.join(', ')})`);
        const successes = statuses.filter((status) => /^2\d\d$/.test(status));
        if (successes.length === 0) gaps.push(`${name}: no success response`);
        for (const status of statuses) {
          const content = operation.responses[status].content;
          if (!content || Object.values(content).some((media) => !media.schema)) gaps.push(`${name}: ${status} without a body schema`);
          if (!/^2/.test(status) && !content?.['application/json']) gaps.push(`${name}: ${status} is not documented as JSON`);
        }
      }
    }
    expect(gaps).toEqual([]);
  });

  it('passes `redocly lint` with the recommended rules without errors, offline', async () => {
    const { stdout, stderr } = await runCli('@redocly/cli', ['lint', documentPath, '--config', join(ROOT, 'redocly.yaml'), '--format', 'json']);
    let report: { totals: { errors: number }; problems: Array<{ ruleId: string; severity: string; message: string; location: Array<{ pointer: string }> }> };
    try {
      report = JSON.parse(stdout);
    } catch {
      throw new Error(`redocly printed no JSON report:\n${stdout}\n${stderr}`);
    }
    const errors = report.problems
      .filter((problem) => problem.severity === 'error')
      .map((problem) => `${problem.ruleId} at ${problem.location[0]?.pointer}: ${problem.message}`);
    expect(errors).toEqual([]);
    expect(report.totals.errors).toBe(0);
  });

  it('generates TypeScript types (openapi-typescript) that a client of the seed endpoints type-checks against', async () => {
    const schemaPath = join(dir, 'openapi-schema.d.ts');
    const generated = await runCli('openapi-typescript', [documentPath, '--output', schemaPath]);
    expect(generated.code).toBe(0);

    const clientPath = join(dir, 'openapi-typed-client.ts');
    await copyFile(CLIENT_SOURCE, clientPath);
    // The same client after the docs drifted: a response field it reads is gone.
    const driftedPath = join(dir, 'drifted-client.ts');
    await writeFile(driftedPath, (await readFile(CLIENT_SOURCE, 'utf8')).replace('tokenUsage.tokensUsedThisRequest', 'tokenUsage.tokensUsedThisCall'));

    const program = ts.createProgram([clientPath, driftedPath], {
      strict: true,
      noEmit: true,
      target: ts.ScriptTarget.ES2022,
      module: ts.ModuleKind.ESNext,
      moduleResolution: ts.ModuleResolutionKind.Bundler,
      lib: ['lib.es2022.d.ts', 'lib.dom.d.ts'],
      types: [],
      skipLibCheck: true,
    });
    const diagnosticsOf = (file: string) =>
      ts
        .getPreEmitDiagnostics(program, program.getSourceFile(file))
        .map((diagnostic) => ts.flattenDiagnosticMessageText(diagnostic.messageText, '\n'));

    expect(diagnosticsOf(clientPath)).toEqual([]);
    expect(diagnosticsOf(driftedPath)).toEqual([expect.stringContaining("Property 'tokensUsedThisCall' does not exist")]);
  });

  it('the same client, run against the service, gets every field it reads', async () => {
    await testApp.app.listen(0, '127.0.0.1');
    const { port } = testApp.app.getHttpServer().address() as AddressInfo;
    // The type-checked source itself, loaded by path (its types stripped by the test transform);
    // its result types were checked above, so here they are only runtime values.
    type Loose = Record<string, (...args: any[]) => Promise<any>>;
    const { createSeedClient } = require(CLIENT_SOURCE) as { createSeedClient(baseUrl: string, apiKey: string): Loose };
    const client = createSeedClient(`http://127.0.0.1:${port}`, testApp.adminKey);

    const plugin = await client.generatePlugin('typed-client-user', 'A plugin that teleports players home');
    if (!('files' in plugin)) throw new Error(`generatePlugin failed: ${JSON.stringify(plugin)}`);
    expect(plugin.files.length).toBeGreaterThan(0);
    expect(plugin.thisRequest).toBeGreaterThan(0);
    expect(plugin.allTime).toBe(plugin.thisRequest);
    expect(plugin.remaining).toMatch(/^\d+$/);

    const chat = await client.chatMessage('typed-client-user', 'How do I register a command?');
    expect(chat.thisRequest).toBeGreaterThan(0);
    expect(chat.trackingEnabled).toBe(true);

    const orcha = await client.orchaChat('typed-client-user', 'Hello');
    expect(orcha.added).toBeGreaterThan(0);

    const windowNow = await client.rollingWindow('typed-client-user');
    expect(windowNow.used).toBe(orcha.windowUsage);
    expect(windowNow.resetAt?.getTime()).toBe(new Date(orcha.resetAt as string).getTime());

    const ledger = await client.ledger('typed-client-user');
    expect(ledger?.total).toBe(plugin.thisRequest! + chat.thisRequest + orcha.added);
    expect(await client.ledger('typed-client-nobody')).toBeNull();

    const completion = await client.openAiCompletion('typed-client-openai', 'Say hello');
    expect(typeof completion.text).toBe('string');
    expect(completion.usage).toBeGreaterThan(0);
    expect(completion.billedUsd).toMatch(/^\d+\.\d{6}$/);
    expect(await client.openAiEmbeddings('typed-client-openai', ['one', 'two'])).toEqual({ vectors: 2, tokens: expect.any(Number) });
    expect((await client.models()).length).toBeGreaterThan(0);

    expect((await client.monthOverview()).tokens).toBeGreaterThanOrEqual(ledger!.total);
    expect((await client.metrics()).requests).toBeGreaterThan(0);
  });

  it('answers, successes and errors alike, with the bodies the document describes', async () => {
    const validator = new OpenApiResponseValidator(document as never);
    // The validator itself can fail: a body short of the documented fields, or an undocumented status.
    expect(validator.problems('get', '/user/{userId}/token-usage', 404, { statusCode: 404, error: 'Not Found' })).toEqual([
      expect.stringContaining("must have required property 'message'"),
      expect.stringContaining("must have required property 'requestId'"),
    ]);
    expect(validator.problems('get', '/health', 418, {})).toEqual([expect.stringContaining('status not documented')]);
    const user = 'contract-user';
    const { body: userKey } = await testApp.api().post('/admin/api-keys').send({ role: 'user', userId: user }).expect(201);
    await testApp.api().put('/user/contract-limited/limits').send({ rolling24hTokens: 1 }).expect(200);

    type Call = { method: 'get' | 'post' | 'put' | 'delete'; template: string; path?: string; body?: unknown; key?: string | null; headers?: Record<string, string>; raw?: string };
    const calls: Array<Call & { status: number }> = [
      { method: 'post', template: '/plugin/generate', body: { prompt: 'A plugin that greets players', userId: user }, status: 200 },
      { method: 'post', template: '/chat/message', body: { message: 'How do I add a command?', username: user }, status: 200 },
      { method: 'post', template: '/api/v1/orcha/chat', body: { user_id: user, message: 'Hello' }, status: 200 },
      { method: 'post', template: '/ai/generate-code', body: { prompt: 'teleport home', pluginName: 'Home', userId: user }, status: 200 },
      { method: 'post', template: '/embeddings', body: { resourceId: 'doc_1', content: 'Paris is the capital of France.', userId: user }, status: 200 },
      { method: 'post', template: '/api/v1/search/semantic', body: { query: 'capital of France', userId: user }, status: 200 },
      { method: 'post', template: '/api/v1/search/answer', body: { query: 'What is the capital of France?', userId: user }, status: 200 },
      { method: 'post', template: '/v1/chat/completions', body: { model: 'openai/gpt-4o-mini', user, messages: [{ role: 'user', content: 'Hi' }] }, status: 200 },
      { method: 'post', template: '/v1/embeddings', body: { model: 'text-embedding-3-small', user, input: ['a', 'b'] }, status: 200 },
      { method: 'get', template: '/v1/models', status: 200 },
      { method: 'get', template: '/api/v1/tokens/usage/{userId}', path: `/api/v1/tokens/usage/${user}`, status: 200 },
      { method: 'get', template: '/user/{userId}/token-usage', path: `/user/${user}/token-usage`, status: 200 },
      { method: 'get', template: '/user/{userId}/limits', path: `/user/${user}/limits`, status: 200 },
      { method: 'get', template: '/api/v1/search/token-usage', path: `/api/v1/search/token-usage?user=${user}`, status: 200 },
      { method: 'get', template: '/api/v1/search/token-usage/recent', path: `/api/v1/search/token-usage/recent?user=${user}`, status: 200 },
      { method: 'get', template: '/api/v1/usage-events', path: `/api/v1/usage-events?user=${user}`, status: 200 },
      { method: 'post', template: '/api/usage', body: { toolName: 'generate_image', success: true, executionTimeMs: 120, userId: user }, status: 201 },
      { method: 'get', template: '/api/usage', status: 200 },
      { method: 'get', template: '/api/usage/history', status: 200 },
      { method: 'get', template: '/metrics', status: 200 },
      { method: 'get', template: '/health', status: 200 },
      { method: 'get', template: '/health/ready', status: 200 },
      { method: 'get', template: '/admin/api-keys', status: 200 },
      // Errors
      { method: 'post', template: '/plugin/generate', body: { prompt: 'x', userId: 'not a valid id!' }, status: 400 },
      { method: 'get', template: '/user/{userId}/token-usage', path: `/user/${user}/token-usage`, key: null, status: 401 },
      { method: 'get', template: '/user/{userId}/token-usage', path: '/user/someone-else/token-usage', key: userKey.key, status: 403 },
      { method: 'get', template: '/user/{userId}/token-usage', path: '/user/contract-nobody/token-usage', status: 404 },
      { method: 'post', template: '/chat/message', raw: JSON.stringify({ message: 'x'.repeat(1_100_000), username: user }), status: 413 },
      { method: 'post', template: '/chat/message', raw: 'message,username', headers: { 'content-type': 'text/csv' }, status: 415 },
      { method: 'post', template: '/chat/message', body: { message: 'first', username: user }, headers: { 'idempotency-key': 'contract-1' }, status: 200 },
      { method: 'post', template: '/chat/message', body: { message: 'second', username: user }, headers: { 'idempotency-key': 'contract-1' }, status: 422 },
      { method: 'post', template: '/plugin/generate', body: { prompt: 'A plugin', userId: 'contract-limited' }, status: 429 },
      { method: 'delete', template: '/admin/api-keys/{id}', path: '/admin/api-keys/000000000000000000000000', status: 404 },
    ];

    const problems: string[] = [];
    for (const call of calls) {
      const agent = call.key === null ? request(testApp.http) : testApp.api(call.key);
      let pending = agent[call.method](call.path ?? call.template).set(call.headers ?? {});
      if (call.raw !== undefined) pending = pending.set('content-type', call.headers?.['content-type'] ?? 'application/json').send(call.raw);
      else if (call.body !== undefined) pending = pending.send(call.body as object);
      const response = await pending;
      const name = `${call.method.toUpperCase()} ${call.path ?? call.template}`;
      if (response.status !== call.status) {
        problems.push(`${name}: ${response.status} instead of ${call.status}: ${JSON.stringify(response.body).slice(0, 300)}`);
        continue;
      }
      problems.push(...validator.problems(call.method, call.template, response.status, response.body));
    }
    expect(problems).toEqual([]);
  });
});
