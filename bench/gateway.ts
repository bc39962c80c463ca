/**
 * Benchmarks 1 and 2: gateway overhead against the provider called directly, and
 * tracked vs untracked throughput at 50 and 200 connections. The service runs from
 * dist/ (npm run build) in its own process; load comes from another process.
 */
import { load, LoadResult, machine, startService, stopAll } from './support/processes';
import { BENCH_ADMIN_KEY, chatBodies, serviceEnv, startBackends } from './support/bench-env';

const DURATION_MS = Number(process.env.BENCH_DURATION_MS ?? 10_000);
const WARMUP_MS = 2_000;
/** Offered loads for the paced overhead measurement, below what one process sustains tracked. */
const RATES = (process.env.BENCH_OVERHEAD_RATES ?? '200,500').split(',').map(Number);

const row = (label: string, result: LoadResult) =>
  `${label.padEnd(34)} ${String(Math.round(result.rps)).padStart(7)} req/s   p50 ${result.p50.toFixed(2)} ms   p95 ${result.p95.toFixed(2)} ms   p99 ${result.p99.toFixed(2)} ms${Object.keys(result.failures).length ? `   failures ${JSON.stringify(result.failures)}` : ''}`;

async function main() {
  const backends = await startBackends();
  console.log(`machine: ${machine()}`);
  console.log(`mongodb: ${backends.mongoKind}`);
  const bodies = chatBodies();
  const headers = { authorization: `Bearer ${BENCH_ADMIN_KEY}` };

  const directUrl = `${backends.providerUrl}/chat/completions`;
  const direct = await load({ url: directUrl, connections: 50, durationMs: DURATION_MS, warmupMs: WARMUP_MS, bodies });
  const directAt: Record<number, LoadResult> = {};
  for (const rate of RATES) directAt[rate] = await load({ url: directUrl, connections: 50, durationMs: DURATION_MS, warmupMs: WARMUP_MS, bodies, rate });

  const results: Record<string, LoadResult> = {};
  const trackedAt: Record<number, LoadResult> = {};
  for (const tracking of ['true', 'false']) {
    const service = await startService(serviceEnv(backends, { TRACKING_ENABLED: tracking }));
    const url = `${service.url}/v1/chat/completions`;
    for (const connections of [50, 200]) {
      results[`${tracking}-${connections}`] = await load({ url, connections, durationMs: DURATION_MS, warmupMs: WARMUP_MS, bodies, headers });
    }
    if (tracking === 'true') {
      for (const rate of RATES) trackedAt[rate] = await load({ url, connections: 50, durationMs: DURATION_MS, warmupMs: WARMUP_MS, bodies, headers, rate });
    }
    service.child.kill('SIGTERM');
    await new Promise((resolve) => service.child.on('exit', resolve));
  }

  const overhead = (label: string, through: LoadResult, straight: LoadResult) =>
    `${label.padEnd(34)} p50 ${(through.p50 - straight.p50).toFixed(2)} ms   p95 ${(through.p95 - straight.p95).toFixed(2)} ms   p99 ${(through.p99 - straight.p99).toFixed(2)} ms   (targets: p50 <= 2 ms, p99 <= 10 ms)`;
  const tracked50 = results['true-50'];
  console.log('\n1. Gateway overhead at 50 connections, tracking on (gateway minus provider called directly)');
  for (const rate of RATES) {
    console.log(`offered ${rate} req/s (paced; late sends timed from when they were due):`);
    console.log(row('  provider directly', directAt[rate]));
    console.log(row('  through /v1/chat/completions', trackedAt[rate]));
    console.log(overhead('  overhead', trackedAt[rate], directAt[rate]));
  }
  console.log('saturated (closed loop: each connection sends again as soon as answered; latency is mostly queueing):');
  console.log(row('  provider directly', direct));
  console.log(row('  through /v1/chat/completions', tracked50));
  console.log(overhead('  overhead', tracked50, direct));
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
