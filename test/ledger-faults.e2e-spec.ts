import { ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { AddressInfo, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import request from 'supertest';
import type { Db } from 'mongodb';
import { UsageOutbox } from '../src/token-tracking/outbox/usage-outbox';
import { FakeProviderServer } from './support/fake-provider.server';
import { TcpProxy } from './support/tcp-proxy';
import { createTestApp, TEST_ADMIN_KEY, TestApp } from './support/test-app';
import { startTestDatabase, testMongoUri } from './support/test-database';

const MODEL = 'fault-model';
/** How long a cold start of the service may take on a loaded machine. */
const SERVICE_START_MS = 90_000;
const ROOT = join(__dirname, '..');

/** Fast failure while MongoDB is unreachable, so outage requests are answered within about a second. */
const OUTAGE_CONFIG = {
  MONGODB_SERVER_SELECTION_TIMEOUT_MS: 400,
  LEDGER_WRITE_TIMEOUT_MS: 1_000,
  // Unlimited: the test is about the ledger, not the limits.
  DEFAULT_TIER: 'JIGGA',
  LOG_LEVEL: 'fatal',
} as const;

interface TokenUsage {
  tokensUsedThisRequest: number;
  trackingEnabled: boolean;
}

function projectAnswer(n: number): string {
  return JSON.stringify({
    name: `Fault${n}`,
    packageName: 'com.example.fault',
    mainClass: 'com.example.fault.Main',
    version: '1.0.0',
    files: [{ path: 'src/main/java/com/example/fault/Main.java', content: `package com.example.fault;\npublic class Main { int n = ${n}; }\n` }],
  });
}

async function ledgerTotals(db: Db, userIds: string[]): Promise<{ totalTokens: number; requestCount: number; applied: number; distinctApplied: number }> {
  const documents = await db.collection('user_token_usage').find({ userId: { $in: userIds } }).toArray();
  const applied = documents.flatMap((document) => (document.appliedRecordIds as string[] | undefined) ?? []);
  return {
    totalTokens: documents.reduce((sum, document) => sum + (document.totalTokens ?? 0), 0),
    requestCount: documents.reduce((sum, document) => sum + (document.requestCount ?? 0), 0),
    applied: applied.length,
    distinctApplied: new Set(applied).size,
  };
}

async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe().catch(() => undefined);
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

describe('Ledger faults', () => {
  describe('MongoDB outage under load (in-process app)', () => {
    let fake: FakeProviderServer;
    let proxy: TcpProxy;
    let testApp: TestApp;
    let outboxDir: string;

    beforeAll(async () => {
      fake = await FakeProviderServer.start();
      const proxied = await TcpProxy.forMongo(testMongoUri());
      proxy = proxied.proxy;
      outboxDir = await mkdtemp(join(tmpdir(), 'ledger-faults-'));
      testApp = await createTestApp({
        ...OUTAGE_CONFIG,
        MONGODB_URI: proxied.uri,
        OUTBOX_DIR: outboxDir,
        AI_PROVIDER: 'compatible',
        AI_BASE_URL: fake.baseUrl,
        AI_API_KEY: 'sk-fault-test',
        AI_PRIMARY_MODEL: MODEL,
        AI_FALLBACK_MODEL: `${MODEL}-fallback`,
        AI_TIMEOUT_MS: 5_000,
      });
    });

    afterAll(async () => {
      await testApp?.close();
      await proxy?.stop();
      await fake?.stop();
      await rm(outboxDir, { recursive: true, force: true });
    });

    afterEach(() => {
      proxy.unblock();
      fake.reset();
    });

    const readiness = () => request(testApp.http).get('/health/ready');
    const drained = () =>
      waitFor('the outbox to drain', async () => {
        const response = await readiness();
        return response.status === 200 && response.body.outbox.records === 0 ? response.body : undefined;
      });

    it('answers all 500 requests through an outage and ends with exact ledger totals', async () => {
      const total = 500;
      const users = Array.from({ length: 20 }, (_, i) => `fault-user-${i}`);
      for (let n = 0; n < total; n += 1) {
        fake.script(MODEL, { text: projectAnswer(n), usage: { prompt_tokens: 100 + (n % 37), completion_tokens: 200 + (n % 53) } });
      }

      const results: { status: number; tokenUsage?: TokenUsage; ms: number }[] = [];
      let next = 0;
      let outageStartedAt = 0;
      let readyDuringOutage: request.Response | undefined;
      const worker = async () => {
        while (next < total) {
          const n = next++;
          if (n === 150) {
            proxy.block('refuse');
            outageStartedAt = Date.now();
          }
          if (n === 350) {
            readyDuringOutage = await readiness();
            proxy.unblock();
          }
          const started = Date.now();
          const response = await testApp
            .api()
            .post('/plugin/generate-only')
            .send({ prompt: `Plugin number ${n}`, userId: users[n % users.length] });
          results.push({ status: response.status, tokenUsage: response.body.tokenUsage, ms: Date.now() - started });
        }
      };
      await Promise.all(Array.from({ length: 50 }, worker));
      const unblockedAt = Date.now();

      expect(results.map((result) => result.status)).toEqual(Array(total).fill(200));
      const untracked = results.filter((result) => !result.tokenUsage!.trackingEnabled);
      expect(untracked.length).toBeGreaterThanOrEqual(100);
      expect(Math.max(...results.map((result) => result.ms))).toBeLessThan(4_000);
      expect(Date.now() - outageStartedAt).toBeLessThan(30_000);

      expect(readyDuringOutage!.status).toBe(503);
      expect(readyDuringOutage!.body).toMatchObject({ status: 'degraded', mongodb: { status: 'down' } });
      expect(readyDuringOutage!.body.outbox.records).toBeGreaterThan(0);
      expect(readyDuringOutage!.body.outbox.bytes).toBeGreaterThan(0);
      expect(readyDuringOutage!.body.outbox.oldestAgeSeconds).toBeGreaterThanOrEqual(0);

      const ready = await drained();
      expect(ready).toMatchObject({ status: 'ok', outbox: { records: 0, bytes: 0, oldestQueuedAt: null } });
      const drainMs = Date.now() - unblockedAt;

      const expectedTokens = results.reduce((sum, result) => sum + result.tokenUsage!.tokensUsedThisRequest, 0);
      const providerCalls = fake.requests.filter((received) => received.path === '/v1/chat/completions').length;
      expect(providerCalls).toBe(total);
      const ledger = await ledgerTotals(testApp.db, users);
      expect(ledger.totalTokens).toBe(expectedTokens);
      expect(ledger.requestCount).toBe(providerCalls);
      expect(ledger.distinctApplied).toBe(ledger.applied);
      expect(ledger.applied).toBe(providerCalls);

      const commits = testApp.app.get(UsageOutbox).groupCommitStats();
      // Every untracked request was queued; a few more were too: their ledger write landed but
      // their usage event did not, and the event is replayed from the outbox the same way.
      expect(commits.records).toBeGreaterThanOrEqual(untracked.length);
      if (process.env.LEDGER_FAULTS_REPORT) {
        process.stdout.write(
          `[ledger-faults] ${untracked.length} queued in ${commits.commits} commits (largest batch ${commits.largestBatch}); ` +
            `drained ${drainMs} ms after unblock; slowest request ${Math.max(...results.map((result) => result.ms))} ms\n`,
        );
      }
    });

    it('counts a write that landed but was never acknowledged once, when the outbox replays it', async () => {
      const userId = 'lost-ack-user';
      // Warm the plan cache so only the ledger write meets the fault.
      fake.script(MODEL, { text: projectAnswer(0), usage: { prompt_tokens: 10, completion_tokens: 20 } });
      await testApp.api().post('/plugin/generate-only').send({ prompt: 'warm up', userId }).expect(200);

      proxy.block('lose-replies');
      const queued: TokenUsage[] = [];
      for (let n = 1; n <= 3; n += 1) {
        fake.script(MODEL, { text: projectAnswer(n), usage: { prompt_tokens: 10 * n, completion_tokens: 5 } });
        const response = await testApp.api().post('/plugin/generate-only').send({ prompt: `lost ack ${n}`, userId }).expect(200);
        queued.push(response.body.tokenUsage);
      }
      expect(queued.map((usage) => usage.trackingEnabled)).toEqual([false, false, false]);
      // At least one write reached MongoDB although its reply was lost: the ledger already holds
      // it while it also waits in the outbox. (How many land depends on which pooled connections
      // the driver had open: new ones cannot finish their handshake while replies are lost.)
      const landed = await ledgerTotals(testApp.db, [userId]);
      expect(landed.requestCount).toBeGreaterThan(1);
      expect(testApp.app.get(UsageOutbox).stats().records).toBe(3);

      proxy.unblock();
      await drained();
      const ledger = await ledgerTotals(testApp.db, [userId]);
      expect(ledger.requestCount).toBe(4);
      expect(ledger.totalTokens).toBe(30 + queued.reduce((sum, usage) => sum + usage.tokensUsedThisRequest, 0));
    });
  });

  describe('SIGKILL with records in the outbox (child process)', () => {
    let proxy: TcpProxy;
    let proxiedUri: string;
    let database: Awaited<ReturnType<typeof startTestDatabase>>;
    let outboxDir: string;
    let child: ChildProcess | undefined;
    let output = '';

    beforeAll(async () => {
      database = await startTestDatabase('faults');
      const proxied = await TcpProxy.forMongo(testMongoUri());
      proxy = proxied.proxy;
      proxiedUri = proxied.uri;
      outboxDir = await mkdtemp(join(tmpdir(), 'ledger-faults-child-'));
    });

    afterAll(async () => {
      child?.kill('SIGKILL');
      await proxy?.stop();
      await database?.stop();
      await rm(outboxDir, { recursive: true, force: true });
    });

    async function startService(): Promise<string> {
      const port = await freePort();
      output = '';
      child = spawn(process.execPath, ['-r', '@swc-node/register', 'src/main.ts'], {
        cwd: ROOT,
        env: {
          ...process.env,
          ...Object.fromEntries(Object.entries(OUTAGE_CONFIG).map(([key, value]) => [key, String(value)])),
          SWCRC: 'true',
          NODE_ENV: 'test',
          LOG_LEVEL: 'warn',
          HOST: '127.0.0.1',
          PORT: String(port),
          MONGODB_URI: proxiedUri,
          MONGODB_DB_NAME: database.dbName,
          OUTBOX_DIR: outboxDir,
          AI_PROVIDER: 'simulated',
          ADMIN_API_KEY: TEST_ADMIN_KEY,
          REDIS_KEY_PREFIX: `test:${database.dbName}:`,
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
      child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
      const url = `http://127.0.0.1:${port}`;
      await waitFor(`the service to listen (output so far: ${output.slice(-2_000)})`, async () => {
        if (child!.exitCode !== null) throw new Error(`service exited with ${child!.exitCode}: ${output.slice(-2_000)}`);
        const response = await fetch(`${url}/health`);
        return response.ok ? true : undefined;
      }, SERVICE_START_MS);
      return url;
    }

    async function kill(): Promise<void> {
      const exited = new Promise((resolve) => child!.once('exit', resolve));
      child!.kill('SIGKILL');
      await exited;
      child = undefined;
    }

    const readiness = async (url: string) => (await fetch(`${url}/health/ready`)).json() as Promise<{ status: string; outbox: { records: number } }>;

    it('replays what a killed process left in the outbox exactly once after a restart', async () => {
      const userIds = ['killed-user-a', 'killed-user-b'];
      let url = await startService();
      proxy.block('blackhole');

      const usages = await Promise.all(
        Array.from({ length: 12 }, async (_, n) => {
          const response = await fetch(`${url}/plugin/generate-only`, {
            method: 'POST',
            headers: { 'content-type': 'application/json', authorization: `Bearer ${TEST_ADMIN_KEY}` },
            body: JSON.stringify({ prompt: `Plugin ${n} made during the outage`, userId: userIds[n % 2] }),
          });
          expect(response.status).toBe(200);
          return ((await response.json()) as { tokenUsage: TokenUsage }).tokenUsage;
        }),
      );
      expect(usages.every((usage) => usage.trackingEnabled === false)).toBe(true);
      expect((await readiness(url)).outbox.records).toBe(12);

      await kill();
      expect((await readdir(outboxDir)).some((name) => name.endsWith('.jsonl'))).toBe(true);
      expect(await ledgerTotals(database.client.db(database.dbName), userIds)).toMatchObject({ requestCount: 0 });

      proxy.unblock();
      url = await startService();
      await waitFor('the restarted service to drain its outbox', async () => {
        const ready = await readiness(url);
        return ready.status === 'ok' && ready.outbox.records === 0 ? true : undefined;
      }, SERVICE_START_MS);
      // A second restart finds nothing left to replay.
      await kill();
      url = await startService();
      expect((await readiness(url)).outbox.records).toBe(0);
      await kill();

      const ledger = await ledgerTotals(database.client.db(database.dbName), userIds);
      expect(ledger.requestCount).toBe(12);
      expect(ledger.totalTokens).toBe(usages.reduce((sum, usage) => sum + usage.tokensUsedThisRequest, 0));
      expect(ledger.distinctApplied).toBe(12);
      // Three cold starts of src/main.ts through swc: on a busy 2-core machine each can take most of a minute.
    }, 4 * SERVICE_START_MS);
  });
});

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}
