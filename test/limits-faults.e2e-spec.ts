import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { Db, MongoClient } from 'mongodb';
import type { Response } from 'supertest';
import { UsageLimitsService } from '../src/limits/usage-limits.service';
import { RedisService } from '../src/redis/redis.service';
import { FakeProviderServer } from './support/fake-provider.server';
import { freePort, startMongoChild, startRedisServer, stopProcess, waitFor } from './support/fault-processes';
import { TcpProxy } from './support/tcp-proxy';
import { createTestApp, TestApp } from './support/test-app';

const MODEL = 'gpt-4o-mini';
/** Short prompts and max_tokens the fake's answers fit in: a real provider never answers past max_tokens. */
const completion = (user: string, n: number) => ({ model: MODEL, user, max_tokens: 16, messages: [{ role: 'user', content: `hi ${n}` }] });

const providerConfig = (fake: FakeProviderServer) => ({
  AI_PROVIDER: 'compatible',
  AI_BASE_URL: fake.baseUrl,
  AI_API_KEY: 'sk-limits-faults',
  AI_PRIMARY_MODEL: MODEL,
  AI_FALLBACK_MODEL: 'none',
  AI_EMBEDDING_MODEL: 'text-embedding-3-small',
  RATE_LIMIT_PER_MINUTE: 10_000_000,
  // Fault tests expect warnings by the hundred; a failing assertion says what went wrong.
  LOG_LEVEL: 'fatal',
});

const today = () => new Date().toISOString().slice(0, 10);

async function ledgerOf(db: Db, userId: string): Promise<{ dayTokens: number; totalTokens: number; costMicros: number; requestCount: number }> {
  const document = await db.collection('user_token_usage').findOne({ userId });
  return {
    dayTokens: document?.dailyUsage?.[today()]?.totalTokens ?? 0,
    totalTokens: document?.totalTokens ?? 0,
    costMicros: document?.totalCostMicros ?? 0,
    requestCount: document?.requestCount ?? 0,
  };
}

function tally(responses: Response[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const response of responses) counts[response.status] = (counts[response.status] ?? 0) + 1;
  return counts;
}

/** One line of figures per test: allowed output, read by whoever runs the fault suite. */
function report(line: string): void {
  process.stdout.write(`[limits-faults] ${line}\n`);
}

describe(`${UsageLimitsService.name} faults`, () => {
  let fake: FakeProviderServer;

  beforeAll(async () => {
    fake = await FakeProviderServer.start();
  });

  afterAll(async () => {
    await fake.stop();
  });

  describe('two instances sharing MongoDB and Redis', () => {
    let mongo: { child: ChildProcess; uri: string };
    let client: MongoClient;
    let a: TestApp;
    let b: TestApp;
    const dbName = `limits_multi_${randomBytes(4).toString('hex')}`;

    beforeAll(async () => {
      mongo = await startMongoChild();
      client = await MongoClient.connect(mongo.uri, { directConnection: true });
      const shared = { ...providerConfig(fake), MONGODB_URI: mongo.uri, MONGODB_DB_NAME: dbName, REDIS_KEY_PREFIX: `test:${dbName}:` };
      a = await createTestApp(shared);
      b = await createTestApp(shared);
    }, 120_000);

    afterAll(async () => {
      await a?.close();
      await b?.close();
      await client?.close();
      await stopProcess(mongo?.child);
    });

    it('applies a limit set on one instance to the next requests on the other: overshoot 0', async () => {
      const user = 'multi-instance-user';
      const warm = await Promise.all(Array.from({ length: 5 }, (_, n) => b.api().post('/v1/chat/completions').send(completion(user, n))));
      expect(warm.map((response) => response.status)).toEqual([200, 200, 200, 200, 200]);
      const used = (await ledgerOf(client.db(dbName), user)).dayTokens;
      const limit = used + 500;

      await a.api().put(`/user/${user}/limits`).send({ dailyTokens: limit }).expect(200);
      const load = await Promise.all(Array.from({ length: 100 }, (_, n) => b.api().post('/v1/chat/completions').send(completion(user, 100 + n))));

      const counts = tally(load);
      const billed = (await ledgerOf(client.db(dbName), user)).dayTokens;
      const overshoot = Math.max(0, billed - limit);
      report(`two instances: limit ${limit} (${used} used before), 100 requests -> ${JSON.stringify(counts)}, day total ${billed}, overshoot ${overshoot}`);
      expect(overshoot).toBe(0);
      expect(counts['200']).toBeGreaterThan(0);
      expect(counts['429']).toBeGreaterThan(0);
      expect(Object.keys(counts).filter((status) => status !== '200' && status !== '429')).toEqual([]);
      // B reports the limit A set, without waiting for any cache to expire.
      const plan = await b.api().get(`/user/${user}/limits`).expect(200);
      expect(plan.body.limits.dailyTokens).toBe(limit);
    }, 120_000);
  });

  describe('Redis restarted empty mid-load', () => {
    let port: number;
    let redis: ChildProcess | undefined;
    let testApp: TestApp;

    beforeAll(async () => {
      port = await freePort();
      redis = await startRedisServer(port);
      testApp = await createTestApp({ ...providerConfig(fake), REDIS_URL: `redis://127.0.0.1:${port}` });
    }, 120_000);

    afterAll(async () => {
      await testApp?.close();
      await stopProcess(redis);
    });

    it('re-seeds every counter, the rolling window included, before admitting anything: overshoot 0 on every limit', async () => {
      const users = {
        rolling: { user: 'restart-rolling', limits: { rolling24hTokens: 600, dailyTokens: null, monthlyCostUsd: null, failMode: 'closed' } },
        daily: { user: 'restart-daily', limits: { rolling24hTokens: null, dailyTokens: 600, monthlyCostUsd: null, failMode: 'closed' } },
        monthly: { user: 'restart-monthly', limits: { rolling24hTokens: null, dailyTokens: null, monthlyCostUsd: 0.0002, failMode: 'closed' } },
      };
      for (const { user, limits } of Object.values(users)) await testApp.api().put(`/user/${user}/limits`).send(limits).expect(200);

      const statuses: number[] = [];
      let sequence = 0;
      const round = async () => {
        const responses = await Promise.all(
          Object.values(users).flatMap(({ user }) => Array.from({ length: 4 }, () => testApp.api().post('/v1/chat/completions').send(completion(user, sequence++)))),
        );
        statuses.push(...responses.map((response) => response.status));
        return responses;
      };

      await round();
      await round();
      // Killed while a round is in flight, back empty a moment later: the load goes on throughout.
      const inFlight = round();
      await stopProcess(redis);
      const duringOutage = round();
      redis = await startRedisServer(port);
      await Promise.all([inFlight, duringOutage]);
      await waitFor('the app to reconnect to Redis', () => testApp.app.get(RedisService).isReady);

      let refusedRounds = 0;
      for (let rounds = 0; rounds < 40 && refusedRounds < 2; rounds += 1) {
        const responses = await round();
        refusedRounds = responses.every((response) => response.status === 429) ? refusedRounds + 1 : 0;
      }
      expect(refusedRounds).toBe(2);

      const db = testApp.db;
      const rolling = (await ledgerOf(db, users.rolling.user)).totalTokens;
      const daily = (await ledgerOf(db, users.daily.user)).dayTokens;
      const monthly = (await ledgerOf(db, users.monthly.user)).costMicros;
      const overshoot = { rolling24hTokens: Math.max(0, rolling - 600), dailyTokens: Math.max(0, daily - 600), monthlyCostMicros: Math.max(0, monthly - 200) };
      const counts: Record<string, number> = {};
      for (const status of statuses) counts[status] = (counts[status] ?? 0) + 1;
      report(`redis restart: ${statuses.length} requests -> ${JSON.stringify(counts)}; used rolling ${rolling}/600, daily ${daily}/600, monthly ${monthly}/200 micro-USD; overshoot ${JSON.stringify(overshoot)}`);
      expect(overshoot).toEqual({ rolling24hTokens: 0, dailyTokens: 0, monthlyCostMicros: 0 });
      // Only refusals by a limit (429) or by fail-closed tiers while Redis was gone (503).
      expect(Object.keys(counts).filter((status) => !['200', '429', '503'].includes(status))).toEqual([]);
    }, 180_000);
  });
});
