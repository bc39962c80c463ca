/**
 * Benchmarks 1 and 2: gateway overhead against the provider called directly, and
 * tracked vs untracked throughput at 50 and 200 connections. The service runs from
 * dist/ (npm run build) in its own process; load comes from another process.
 */
import { load, LoadResult, machine, startService, stopAll } from './support/processes';
import { BENCH_ADMIN_KEY, chatBodies, serviceEnv, startBackends } from './support/bench-env';

const DURATION_MS = Number(process.env.BENCH_DURATION_MS ?? 10_000);
const WARMUP_MS = 2_000;

const row = (label: string, result: LoadResult) =>
  `${label.padEnd(34)} ${String(Math.round(result.rps)).padStart(7)} req/s   p50 ${result.p50.toFixed(2)} ms   p95 ${result.p95.toFixed(2)} ms   p99 ${result.p99.toFixed(2)} ms${Object.keys(result.failures).length ? `   failures ${JSON.stringify(result.failures)}` : ''}`;

async function main() {
  const backends = await startBackends();
  console.log(`machine: ${machine()}`);
  console.log(`mongodb: ${backends.mongoKind}`);
  const bodies = chatBodies();
  const headers = { authorization: `Bearer ${BENCH_ADMIN_KEY}` };

  const direct = await load({ url: `${backends.providerUrl}/chat/completions`, connections: 50, durationMs: DURATION_MS, warmupMs: WARMUP_MS, bodies });

  const results: Record<string, LoadResult> = {};
  for (const tracking of ['true', 'false']) {
    const service = await startService(serviceEnv(backends, { TRACKING_ENABLED: tracking }));
    for (const connections of [50, 200]) {
      results[`${tracking}-${connections}`] = await load({ url: `${service.url}/v1/chat/completions`, connections, durationMs: DURATION_MS, warmupMs: WARMUP_MS, bodies, headers });
    }
    service.child.kill('SIGTERM');
    await new Promise((resolve) => service.child.on('exit', resolve));
  }

  const tracked50 = results['true-50'];
  console.log('\n1. Gateway overhead at 50 connections (gateway minus provider called directly)');
  console.log(row('provider directly', direct));
  console.log(row('through /v1/chat/completions', tracked50));
  console.log(
    `overhead                           p50 ${(tracked50.p50 - direct.p50).toFixed(2)} ms   p95 ${(tracked50.p95 - direct.p95).toFixed(2)} ms   p99 ${(tracked50.p99 - direct.p99).toFixed(2)} ms   (targets: p50 <= 2 ms, p99 <= 10 ms)`,
  );
  console.log('\n2. Throughput, one process');
  for (const connections of [50, 200]) {
    const on = results[`true-${connections}`];
    const off = results[`false-${connections}`];
    console.log(row(`tracked, ${connections} connections`, on));
    console.log(row(`untracked, ${connections} connections`, off));
    console.log(`tracked/untracked throughput at ${connections}: ${(on.rps / off.rps).toFixed(2)} (target >= 0.70; target tracked >= 1000 req/s)`);
  }
  stopAll();
}

void main().catch((error) => {
  console.error(error);
  stopAll();
  process.exit(1);
});
