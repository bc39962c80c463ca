import { request as httpRequest } from 'node:http';
import type { AddressInfo } from 'node:net';
import { combinedVariant, FuzzVariant, OpenApiDocument, operationsOf, seededRandom, shuffle, variantsOf } from './support/openapi-fuzz';
import { createTestApp, TestApp } from './support/test-app';

const SEED = process.env.FUZZ_SEED !== undefined ? Number(process.env.FUZZ_SEED) : Math.floor(Math.random() * 2 ** 31);
const MIN_VARIANTS_PER_OPERATION = 40;
const MAX_VARIANTS_PER_OPERATION = 48;
const CONCURRENCY = 4;
const BODY_LIMIT_BYTES = 1024 * 1024;
const FUZZ_USER = 'fuzz-user';
const PROVIDER_KEY = 'sk-fuzz-provider-secret-0123456789';

const STACK_TRACE = /\n\s+at \S|\bat [\w.<>]+ \([^)]*:\d+:\d+\)/;
const FILE_PATH = /\/work\/|\/home\/|\/tmp\/|\/usr\/lib|node_modules|\b[\w-]+\.(ts|js):\d+/;
const ANY_API_KEY = /\btl_[A-Za-z0-9_-]{16,}/;

interface Answer {
  status: number;
  body: string;
}

function send(port: number, variant: FuzzVariant, key: string): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string | number> = { ...variant.headers, authorization: `Bearer ${key}` };
    if (variant.rawBody !== undefined) headers['content-length'] = Buffer.byteLength(variant.rawBody);
    const req = httpRequest({ host: '127.0.0.1', port, method: variant.method, path: variant.url, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('error', (error: NodeJS.ErrnoException) => {
      // The server may answer 413 and close before reading all of an oversized body.
      if (error.code === 'EPIPE' || error.code === 'ECONNRESET') resolve({ status: 413, body: '' });
      else reject(error);
    });
    req.end(variant.rawBody);
  });
}

describe('OpenAPI-driven fuzzing: no input makes the service fail or leak', () => {
  let testApp: TestApp;
  let port: number;
  let userKey: string;

  beforeAll(async () => {
    testApp = await createTestApp({ RATE_LIMIT_PER_MINUTE: 10_000_000, BODY_LIMIT_BYTES, PLUGIN_BUILD_TOOL: 'javac', AI_API_KEY: PROVIDER_KEY });
    userKey = (await testApp.api().post('/admin/api-keys').send({ role: 'user', userId: FUZZ_USER }).expect(201)).body.key as string;
    await testApp.api().put(`/user/${FUZZ_USER}/limits`).send({ rolling24hTokens: null, dailyTokens: null, monthlyCostUsd: null }).expect(200);
    await new Promise<void>((resolve) => testApp.http.listen(0, '127.0.0.1', resolve));
    port = (testApp.http.address() as AddressInfo).port;
  });

  afterAll(() => testApp.close());

  it(`answers at least ${MIN_VARIANTS_PER_OPERATION} variants of every operation without a 5xx, stack trace, file path or key`, async () => {
    const document = (await testApp.api().get('/docs-json').expect(200)).body as OpenApiDocument;
    const operations = operationsOf(document, FUZZ_USER);
    expect(operations.length).toBeGreaterThanOrEqual(30);
    const random = seededRandom(SEED);

    const planned: Array<{ variant: FuzzVariant; key: string }> = [];
    const perOperation = new Map<string, number>();
    for (const operation of operations) {
      const [baseline, ...faults] = variantsOf(operation, BODY_LIMIT_BYTES);
      const sample = [baseline, ...shuffle(faults, random).slice(0, MAX_VARIANTS_PER_OPERATION - 1)];
      for (let index = 0; sample.length < MIN_VARIANTS_PER_OPERATION; index++) sample.push(combinedVariant(operation, random, index));
      perOperation.set(operation.label, sample.length);
      for (const variant of sample) planned.push({ variant, key: random() < 0.5 ? testApp.adminKey : userKey });
    }

    const problems: string[] = [];
    let next = 0;
    const worker = async () => {
      while (next < planned.length) {
        const { variant, key } = planned[next++];
        const who = key === userKey ? 'user key' : 'admin key';
        let answer: Answer;
        try {
          answer = await send(port, variant, key);
        } catch (error) {
          problems.push(`${variant.label} (${who}): request failed: ${(error as Error).message}`);
          continue;
        }
        const excerpt = answer.body.slice(0, 300).replace(/\s+/g, ' ');
        const createsKey = variant.method === 'POST' && variant.url.startsWith('/admin/api-keys') && answer.status === 201;
        if (answer.status >= 500) problems.push(`${variant.label} (${who}): ${answer.status} ${excerpt}`);
        if (STACK_TRACE.test(answer.body)) problems.push(`${variant.label} (${who}): stack trace in ${excerpt}`);
        if (FILE_PATH.test(answer.body)) problems.push(`${variant.label} (${who}): file path ${FILE_PATH.exec(answer.body)![0]} in ${excerpt}`);
        for (const secret of [testApp.adminKey, userKey, PROVIDER_KEY]) {
          if (answer.body.includes(secret)) problems.push(`${variant.label} (${who}): a key in ${excerpt}`);
        }
        if (!createsKey && ANY_API_KEY.test(answer.body)) problems.push(`${variant.label} (${who}): an API key in ${excerpt}`);
      }
    };
    await Promise.all(Array.from({ length: CONCURRENCY }, worker));

    expect([...perOperation.values()].every((count) => count >= MIN_VARIANTS_PER_OPERATION)).toBe(true);
    if (problems.length > 0) {
      throw new Error(`${problems.length} of ${planned.length} fuzzed requests went wrong (reproduce with FUZZ_SEED=${SEED}):\n${problems.slice(0, 40).join('\n')}`);
    }
  }, 300_000);
});
