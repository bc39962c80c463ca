import { execFile } from 'node:child_process';
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import request from 'supertest';
import ts from 'typescript';
import type { AddressInfo } from 'node:net';
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
});
