/**
 * Benchmark 3: database commands per tracked request (counted at the driver), and
 * records per second sustained into MongoDB by 200 concurrent writers, checked for
 * lost updates afterwards.
 */
import 'reflect-metadata';
import { getConnectionToken } from '@nestjs/mongoose';
import type { Connection } from 'mongoose';
import { createApp } from '../src/app.factory';
import { loadConfig } from '../src/config/load-config';
import { TokenTrackingService } from '../src/token-tracking/token-tracking.service';
import type { UsageRecord } from '../src/token-tracking/usage-record';
import { BENCH_ADMIN_KEY, chatBodies, serviceEnv, startBackends } from './support/bench-env';
import { machine, stopAll } from './support/processes';

const WRITERS = 200;
const USERS = 50;
const DURATION_MS = Number(process.env.BENCH_DURATION_MS ?? 10_000);

async function main() {
  const backends = await startBackends();
  console.log(`machine: ${machine()}`);
  console.log(`mongodb: ${backends.mongoKind}`);
  const config = loadConfig({ ...serviceEnv(backends), LOG_LEVEL: 'warn', MONGODB_MEMORY_SERVER: 'false', MONGODB_MONITOR_COMMANDS: 'true', RATE_LIMIT_PER_MINUTE: '100000000' } as never);
  const app = await createApp(config);
  await app.init();
  const fastify = app.getHttpAdapter().getInstance();
  await fastify.ready();
  const connection = app.get<Connection>(getConnectionToken());
  const counts = new Map<string, number>();
  connection.getClient().on('commandStarted', (event) => counts.set(event.commandName, (counts.get(event.commandName) ?? 0) + 1));

  const bodies = chatBodies(20);
  const inject = (i: number) =>
    fastify.inject({ method: 'POST', url: '/v1/chat/completions', headers: { authorization: `Bearer ${BENCH_ADMIN_KEY}` }, payload: bodies[i % bodies.length] as object });
  for (let i = 0; i < 200; i += 1) await inject(i); // warm caches (keys, plans, indexes)
  counts.clear();
  const REQUESTS = 1000;
  for (let i = 0; i < REQUESTS; i += 25) await Promise.all(Array.from({ length: 25 }, (_, j) => inject(i + j)));
  const perRequest = [...counts.entries()].map(([name, count]) => `${name} ${(count / REQUESTS).toFixed(2)}`).join(', ');
  const total = [...counts.values()].reduce((a, b) => a + b, 0) / REQUESTS;
  console.log('\n3. Ledger');
  console.log(`  database commands per tracked /v1/chat/completions request: ${total.toFixed(2)} (${perRequest})`);

  const tracking = app.get(TokenTrackingService);
  const record: UsageRecord = {
    operationType: 'chat_completion',
    model: 'gpt-4o-mini',
    provider: 'bench',
    promptTokens: 7,
    completionTokens: 3,
    costMicros: 2,
    costSource: 'catalog',
    latencyMs: 1,
    success: true,
  };
  counts.clear();
  let written = 0;
  const deadline = Date.now() + DURATION_MS;
  const started = Date.now();
  await Promise.all(
    Array.from({ length: WRITERS }, async (_, writer) => {
      while (Date.now() < deadline) {
        await tracking.trackTokenUsage(`ledger-bench-${writer % USERS}`, record);
        written += 1;
      }
    }),
  );
  const seconds = (Date.now() - started) / 1000;
  const documents = await connection.db!.collection('user_token_usage').find({ userId: /^ledger-bench-/ }).toArray();
  const requests = documents.reduce((sum, doc) => sum + (doc.requestCount as number), 0);
  const tokens = documents.reduce((sum, doc) => sum + (doc.totalTokens as number), 0);
  const lost = written - requests;
  console.log(`  ${WRITERS} concurrent writers over ${USERS} users: ${written} records in ${seconds.toFixed(1)} s = ${Math.round(written / seconds)} records/s; commands per record ${([...counts.values()].reduce((a, b) => a + b, 0) / written).toFixed(2)}`);
  console.log(`  afterwards: requestCount sum ${requests}, token sum ${tokens} (expected ${written * 10}); lost updates: ${lost}${tokens === written * 10 && lost === 0 ? ' (exact)' : ' (MISMATCH)'}`);
  await app.close();
  stopAll();
}

void main().catch((error) => {
  console.error(error);
  stopAll();
  process.exit(1);
});
