/**
 * Benchmark 5: analytics over 1,000,000 usage events. Seeds the aggregates of 1M synthetic
 * events, then measures GET /api/usage?period=month (and the other periods) over HTTP.
 *
 * Seeding: pushing 1M events through UsageEventsService.record would take far too long on the
 * in-process server, so the benchmark folds the events in memory with the very increment
 * functions record() uses (systemRollupIncrements / userRollupIncrements) and bulk-inserts the
 * resulting day/month documents. It then records 5,000 more events through the real record()
 * path on top (timing it) and checks the month document counted every event exactly once.
 *   SWCRC=true node -r @swc-node/register bench/analytics-period.ts
 */
import 'reflect-metadata';
import { getModelToken } from '@nestjs/mongoose';
import type { Model } from 'mongoose';
import { randomUUID } from 'node:crypto';
import { UsageEventsService } from '../src/analytics/usage-events.service';
import { RollupInput, systemRollupId, systemRollupIncrements, userRollupId, userRollupIncrements } from '../src/analytics/usage-rollup';
import { UsageRollup, UserUsageRollup } from '../src/analytics/usage-rollup.schema';
import { createApp } from '../src/app.factory';
import { loadConfig } from '../src/config/load-config';
import { UsageCalendar } from '../src/token-tracking/usage-calendar';
import { OPERATION_TYPES, OperationType } from '../src/token-tracking/usage-record';
import { BENCH_ADMIN_KEY, serviceEnv, startBackends } from './support/bench-env';
import { load, machine, stopAll } from './support/processes';

const EVENTS = Number(process.env.BENCH_EVENTS ?? 1_000_000);
const DAYS = 60;
const USERS = 2_000;
const REAL_PATH_EVENTS = 5_000;
const MODELS = ['openai/gpt-4o-mini', 'openai/gpt-4o', 'anthropic/claude-3.5-sonnet', 'meta-llama/llama-3.1-70b', 'openai/text-embedding-3-small', 'google/gemini-1.5-pro', 'mistral/mistral-large', 'openai/o1-mini'];
const PROVIDERS = ['openrouter', 'openai', 'compatible'];
const TIERS = ['FREE', 'JIVE', 'JIGGA'];
const TOOLS = Array.from({ length: 10 }, (_, i) => `tool_${i}`);
const AI_OPERATIONS = OPERATION_TYPES.filter((operation) => operation !== 'tool_call');
const DAY_MS = 86_400_000;

/** mulberry32: a small deterministic PRNG, so runs are comparable. */
function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

const pathParts = new Map<string, string[]>();

/** What MongoDB's $inc does to a document, in memory. */
function applyIncrements(document: Record<string, unknown>, increments: Record<string, number>): void {
  for (const path in increments) {
    let parts = pathParts.get(path);
    if (!parts) pathParts.set(path, (parts = path.split('.')));
    let node = document;
    for (let i = 0; i < parts.length - 1; i += 1) node = (node[parts[i]] ??= {}) as Record<string, unknown>;
    const leaf = parts[parts.length - 1];
    node[leaf] = ((node[leaf] as number | undefined) ?? 0) + increments[path];
  }
}

function syntheticEvent(next: () => number, now: number): { userId: string; at: Date; input: RollupInput } {
  const userIndex = Math.floor(next() * USERS);
  const tool = next() < 0.05;
  const operation: OperationType = tool ? 'tool_call' : AI_OPERATIONS[Math.floor(next() * AI_OPERATIONS.length)];
  const embedding = operation === 'embedding' || operation === 'batch_embedding';
  const promptTokens = tool || embedding ? 0 : 50 + Math.floor(next() * 3000);
  const completionTokens = tool || embedding ? 0 : Math.floor(next() * 800);
  const embeddingTokens = embedding ? 5 + Math.floor(next() * 500) : 0;
  return {
    userId: `user-${userIndex}`,
    at: new Date(now - Math.floor(next() * DAYS * DAY_MS)),
    input: {
      operation,
      model: tool ? 'none' : MODELS[Math.floor(next() * MODELS.length)],
      provider: tool ? 'tool' : PROVIDERS[userIndex % PROVIDERS.length],
      tier: TIERS[userIndex % TIERS.length],
      promptTokens,
      completionTokens,
      embeddingTokens,
      costMicros: Math.round((promptTokens * 0.15 + completionTokens * 0.6 + embeddingTokens * 0.02) * (1 + next())),
      latencyMs: 100 + Math.floor(next() * 4000),
      success: next() > 0.02,
      cacheHit: next() < 0.1,
      ...(tool ? { tool: { name: TOOLS[Math.floor(next() * TOOLS.length)], executionTimeMs: 50 + Math.floor(next() * 2000) } } : {}),
    },
  };
}

async function main() {
  const backends = await startBackends();
  console.log(`machine: ${machine()}`);
  console.log(`mongodb: ${backends.mongoKind}`);
  const config = loadConfig({ ...serviceEnv(backends), LOG_LEVEL: 'warn', MONGODB_MEMORY_SERVER: 'false', RATE_LIMIT_PER_MINUTE: '100000000', USAGE_LOG_FILE: 'false', HIGH_USAGE_MULTIPLIER: '1000' } as never);
  const app = await createApp(config);
  await app.listen(0, '127.0.0.1');
  const url = await app.getUrl();
  const calendar = new UsageCalendar(config.USAGE_TIMEZONE);
  const now = Date.now();

  // 1. Fold 1M events into the documents record() would have produced.
  let started = Date.now();
  const next = random(42);
  const systemDocs = new Map<string, Record<string, unknown>>();
  const userDocs = new Map<string, Record<string, unknown>>();
  const doc = (map: Map<string, Record<string, unknown>>, id: string, base: Record<string, unknown>) => {
    let document = map.get(id);
    if (!document) map.set(id, (document = { _id: id, ...base, updatedAt: new Date(now) }));
    return document;
  };
  let expectedMonthRequests = 0;
  const thisMonth = calendar.monthKey(new Date(now));
  for (let i = 0; i < EVENTS; i += 1) {
    const { userId, at, input } = syntheticEvent(next, now);
    const day = calendar.dayKey(at);
    const month = calendar.monthKey(at);
    if (month === thisMonth) expectedMonthRequests += 1;
    const system = systemRollupIncrements(input);
    const user = userRollupIncrements(input);
    applyIncrements(doc(systemDocs, systemRollupId('day', day), { granularity: 'day', period: day }), system);
    applyIncrements(doc(systemDocs, systemRollupId('month', month), { granularity: 'month', period: month }), system);
    applyIncrements(doc(userDocs, userRollupId('day', day, userId), { granularity: 'day', period: day, userId, expiresAt: new Date(at.getTime() + 400 * DAY_MS) }), user);
    applyIncrements(doc(userDocs, userRollupId('month', month, userId), { granularity: 'month', period: month, userId }), user);
  }
  const folded = Date.now() - started;
  started = Date.now();
  const rollups = app.get<Model<UsageRollup>>(getModelToken(UsageRollup.name));
  const userRollups = app.get<Model<UserUsageRollup>>(getModelToken(UserUsageRollup.name));
  await rollups.collection.insertMany([...systemDocs.values()] as never[]);
  const userList = [...userDocs.values()];
  for (let i = 0; i < userList.length; i += 5_000) await userRollups.collection.insertMany(userList.slice(i, i + 5_000) as never[], { ordered: false });
  console.log(
    `seeded ${EVENTS.toLocaleString('en')} events over ${DAYS} days, ${USERS.toLocaleString('en')} users: ` +
      `${systemDocs.size} system day/month documents, ${userDocs.size.toLocaleString('en')} user day/month documents ` +
      `(folded in ${(folded / 1000).toFixed(1)} s with the record() increment functions, bulk-inserted in ${((Date.now() - started) / 1000).toFixed(1)} s)`,
  );

  // 2. The real write path on top: 5,000 events through UsageEventsService.record, 50 at a time.
  const events = app.get(UsageEventsService);
  const realNext = random(7);
  const writeLatencies: number[] = [];
  started = Date.now();
  for (let i = 0; i < REAL_PATH_EVENTS; i += 50) {
    await Promise.all(
      Array.from({ length: 50 }, async () => {
        const { userId, input } = syntheticEvent(realNext, now);
        const began = performance.now();
        await events.record(
          userId,
          {
            recordId: randomUUID(),
            occurredAt: new Date(now),
            operationType: input.operation,
            model: input.model,
            provider: input.provider,
            promptTokens: input.promptTokens,
            completionTokens: input.completionTokens,
            embeddingTokens: input.embeddingTokens,
            costMicros: input.costMicros,
            costSource: 'catalog',
            latencyMs: input.latencyMs,
            success: input.success,
          },
          { tier: input.tier, cacheHit: input.cacheHit, ...(input.tool ? { tool: input.tool } : {}) },
        );
        writeLatencies.push(performance.now() - began);
      }),
    );
  }
  const writeSeconds = (Date.now() - started) / 1000;
  await events.settled();
  writeLatencies.sort((a, b) => a - b);
  const pct = (q: number) => writeLatencies[Math.min(writeLatencies.length - 1, Math.floor(q * writeLatencies.length))].toFixed(1);
  console.log(
    `real record() path: ${REAL_PATH_EVENTS.toLocaleString('en')} events at concurrency 50: ${(REAL_PATH_EVENTS / writeSeconds).toFixed(0)} events/s, ` +
      `p50 ${pct(0.5)} ms, p95 ${pct(0.95)} ms per event (group-committed: insertMany, merged rollup bulkWrites, marker update)`,
  );
  const month = await rollups.collection.findOne({ _id: systemRollupId('month', thisMonth) as never });
  const counted = (month?.totals as { requests?: number } | undefined)?.requests;
  console.log(`month document counts ${counted?.toLocaleString('en')} events; expected ${(expectedMonthRequests + REAL_PATH_EVENTS).toLocaleString('en')}: ${counted === expectedMonthRequests + REAL_PATH_EVENTS ? 'OK' : 'MISMATCH'}`);

  // 3. Reads.
  const headers = { authorization: `Bearer ${BENCH_ADMIN_KEY}` };
  const probe = await fetch(`${url}/api/usage?period=month`, { headers });
  const body = (await probe.json()) as { summary: { requestCount: number; activeUsers: number; totalTokens: number } };
  console.log(`GET /api/usage?period=month -> ${probe.status}, ${body.summary.requestCount.toLocaleString('en')} requests, ${body.summary.activeUsers} active users, ${(JSON.stringify(body).length / 1024).toFixed(1)} KiB`);
  console.log('\nlatency over HTTP (ms), after 50 warm-up requests:');
  for (const [label, path, total] of [
    ['period=month', '/api/usage?period=month', 500],
    ['period=today', '/api/usage?period=today', 200],
    ['period=week', '/api/usage?period=week', 200],
    ['period=year', '/api/usage?period=year', 100],
    ['period=all', '/api/usage?period=all', 100],
    ['seed 004 /all?days=7', '/api/v1/search/token-usage/all?days=7', 50],
    ['seed 004 user days=30', '/api/v1/search/token-usage?user=user-1&days=30', 200],
  ] as const) {
    await load({ url: `${url}${path}`, connections: 1, total: 50, headers });
    const sequential = await load({ url: `${url}${path}`, connections: 1, total, headers });
    console.log(`  ${label.padEnd(24)} 1 connection:  p50 ${sequential.p50.toFixed(1).padStart(7)}  p95 ${sequential.p95.toFixed(1).padStart(7)}  (${total} requests, ${Object.keys(sequential.failures).length ? JSON.stringify(sequential.failures) : 'no failures'})`);
  }
  const concurrent = await load({ url: `${url}/api/usage?period=month`, connections: 10, durationMs: 10_000, headers });
  console.log(`  period=month             10 connections: p50 ${concurrent.p50.toFixed(1)}  p95 ${concurrent.p95.toFixed(1)}  p99 ${concurrent.p99.toFixed(1)}  ${concurrent.rps.toFixed(0)} req/s`);
  await app.close();
}

main()
  .catch((error) => {
    console.error(error);
    process.exitCode = 1;
  })
  .finally(stopAll);
