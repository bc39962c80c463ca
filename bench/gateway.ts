/**
 * Benchmarks 1 and 2: gateway overhead against the provider called directly, and
 * tracked vs untracked throughput at 50 and 200 connections. The service runs from
 * dist/ (npm run build) in its own process; load comes from another process.
 *
 * The tracked and untracked services run side by side and are loaded in alternating
 * rounds, so a drift in the machine's speed during the run (large on shared VMs) moves
 * both figures alike instead of skewing their ratio; the median round of each is reported.
 */
import { cpuMs, load, LoadResult, machine, mainThreadSchedMs, startService, stopAll } from './support/processes';
import { BENCH_ADMIN_KEY, chatBodies, serviceEnv, startBackends } from './support/bench-env';

const DURATION_MS = Number(process.env.BENCH_DURATION_MS ?? 10_000);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const ROUND_MS = Number(process.env.BENCH_ROUND_MS ?? 3_000);
const WARMUP_MS = 2_000;
/** Offered loads for the paced overhead measurement, below what one process sustains tracked. */
const RATES = (process.env.BENCH_OVERHEAD_RATES ?? '100,200').split(',').map(Number);

const row = (label: string, result: LoadResult) =>
  `${label.padEnd(34)} ${String(Math.round(result.rps)).padStart(7)} req/s   p50 ${result.p50.toFixed(2)} ms   p95 ${result.p95.toFixed(2)} ms   p99 ${result.p99.toFixed(2)} ms${Object.keys(result.failures).length ? `   failures ${JSON.stringify(result.failures)}` : ''}`;

const median = <T>(items: T[], key: (item: T) => number): T => [...items].sort((a, b) => key(a) - key(b))[Math.floor(items.length / 2)];

interface Rounds {
  results: LoadResult[];
  /** Per request, summed over the rounds: CPU ms of the service and of the in-process MongoDB. */
  serviceCpuMs: number;
  mongoCpuMs?: number;
  /** Service main thread: ms it ran, and ms it was runnable but waited for a CPU. */
  mainThreadRunning: number;
  mainThreadWaiting: number;
}

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

  const services = {
    tracked: await startService(serviceEnv(backends, { TRACKING_ENABLED: 'true' })),
    untracked: await startService(serviceEnv(backends, { TRACKING_ENABLED: 'false' })),
  };
  const urlOf = (mode: keyof typeof services) => `${services[mode].url}/v1/chat/completions`;
  for (const mode of ['tracked', 'untracked'] as const) {
    await load({ url: urlOf(mode), connections: 50, durationMs: WARMUP_MS, bodies, headers });
  }

  const rounds: Record<string, Rounds> = {};
  for (const connections of [50, 200]) {
    for (let round = 0; round < ROUNDS; round += 1) {
      for (const mode of ['tracked', 'untracked'] as const) {
        const pid = services[mode].child.pid!;
        const entry = (rounds[`${mode}-${connections}`] ??= { results: [], serviceCpuMs: 0, mongoCpuMs: backends.pids.mongo ? 0 : undefined, mainThreadRunning: 0, mainThreadWaiting: 0 });
        const before = { service: cpuMs(pid), mongo: backends.pids.mongo ? cpuMs(backends.pids.mongo) : 0, sched: mainThreadSchedMs(pid) };
        // No warm-up inside a round: CPU is counted over the whole round, so every request must be too.
        const result = await load({ url: urlOf(mode), connections, durationMs: ROUND_MS, bodies, headers });
        const sched = mainThreadSchedMs(pid);
        entry.results.push(result);
        entry.serviceCpuMs += cpuMs(pid) - before.service;
        if (entry.mongoCpuMs !== undefined) entry.mongoCpuMs += cpuMs(backends.pids.mongo!) - before.mongo;
        entry.mainThreadRunning += sched.running - before.sched.running;
        entry.mainThreadWaiting += sched.waiting - before.sched.waiting;
      }
    }
  }
  const trackedAt: Record<number, LoadResult> = {};
  const untrackedAt: Record<number, LoadResult> = {};
  for (const rate of RATES) {
    trackedAt[rate] = await load({ url: urlOf('tracked'), connections: 50, durationMs: DURATION_MS, warmupMs: WARMUP_MS, bodies, headers, rate });
    untrackedAt[rate] = await load({ url: urlOf('untracked'), connections: 50, durationMs: DURATION_MS, warmupMs: WARMUP_MS, bodies, headers, rate });
  }
  // One request at a time: the latency a lone request adds, without any queueing.
  const lone = {
    direct: await load({ url: directUrl, connections: 1, durationMs: DURATION_MS, warmupMs: WARMUP_MS, bodies }),
    tracked: await load({ url: urlOf('tracked'), connections: 1, durationMs: DURATION_MS, warmupMs: WARMUP_MS, bodies, headers }),
    untracked: await load({ url: urlOf('untracked'), connections: 1, durationMs: DURATION_MS, warmupMs: WARMUP_MS, bodies, headers }),
  };
  for (const service of Object.values(services)) service.child.kill('SIGTERM');
  await Promise.all(Object.values(services).map((service) => new Promise((resolve) => service.child.on('exit', resolve))));

  const overhead = (label: string, through: LoadResult, straight: LoadResult) =>
    `${label.padEnd(34)} p50 ${(through.p50 - straight.p50).toFixed(2)} ms   p95 ${(through.p95 - straight.p95).toFixed(2)} ms   p99 ${(through.p99 - straight.p99).toFixed(2)} ms   (targets: p50 <= 2 ms, p99 <= 10 ms)`;
  const medianOf = (key: string) => median(rounds[key].results, (result) => result.rps);
  const tracked50 = medianOf('tracked-50');
  console.log('\n1. Gateway overhead at 50 connections, tracking on (gateway minus provider called directly)');
  for (const rate of RATES) {
    console.log(`offered ${rate} req/s (paced; late sends timed from when they were due):`);
    console.log(row('  provider directly', directAt[rate]));
    console.log(row('  through /v1/chat/completions', trackedAt[rate]));
    console.log(overhead('  overhead', trackedAt[rate], directAt[rate]));
    console.log(row('  same, tracking off', untrackedAt[rate]));
    console.log(overhead('  overhead, tracking off', untrackedAt[rate], directAt[rate]));
  }
  console.log('one connection (closed loop: one request at a time, no queueing):');
  console.log(row('  provider directly', lone.direct));
  console.log(row('  through /v1/chat/completions', lone.tracked));
  console.log(overhead('  overhead', lone.tracked, lone.direct));
  console.log(row('  same, tracking off', lone.untracked));
  console.log(overhead('  overhead, tracking off', lone.untracked, lone.direct));
  console.log('saturated (closed loop: each connection sends again as soon as answered; latency is mostly queueing):');
  console.log(row('  provider directly', direct));
  console.log(row('  through /v1/chat/completions', tracked50));
  console.log(overhead('  overhead', tracked50, direct));

  console.log(`\n2. Throughput, one process (${ROUNDS} alternating rounds of ${ROUND_MS / 1000} s per mode; median round shown)`);
  for (const connections of [50, 200]) {
    const ratios = rounds[`tracked-${connections}`].results.map((on, i) => on.rps / rounds[`untracked-${connections}`].results[i].rps);
    for (const mode of ['tracked', 'untracked']) {
      const entry = rounds[`${mode}-${connections}`];
      const requests = entry.results.reduce((sum, result) => sum + result.requests, 0);
      console.log(row(`${mode}, ${connections} connections`, medianOf(`${mode}-${connections}`)));
      console.log(
        `    CPU per request: service ${(entry.serviceCpuMs / requests).toFixed(2)} ms` +
          (entry.mongoCpuMs !== undefined ? `, in-process MongoDB ${(entry.mongoCpuMs / requests).toFixed(2)} ms` : '') +
          `; service main thread waited for a CPU ${Math.round((100 * entry.mainThreadWaiting) / (entry.mainThreadWaiting + entry.mainThreadRunning))}% of its busy time`,
      );
    }
    const sorted = [...ratios].sort((a, b) => a - b);
    console.log(
      `tracked/untracked throughput at ${connections}: ${(medianOf(`tracked-${connections}`).rps / medianOf(`untracked-${connections}`).rps).toFixed(2)} ` +
        `(per-round ratios ${sorted[0].toFixed(2)}-${sorted.at(-1)!.toFixed(2)}; target >= 0.70; target tracked >= 1000 req/s)`,
    );
  }
  stopAll();
}

void main().catch((error) => {
  console.error(error);
  stopAll();
  process.exit(1);
});
