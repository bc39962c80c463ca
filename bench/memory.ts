/** Benchmark 6: resident memory of the service across 100,000 tracked requests. */
import { load, machine, rssMiB, startService, stopAll } from './support/processes';
import { BENCH_ADMIN_KEY, chatBodies, serviceEnv, startBackends } from './support/bench-env';

const TOTAL = Number(process.env.BENCH_MEMORY_REQUESTS ?? 100_000);

async function main() {
  const backends = await startBackends();
  console.log(`machine: ${machine()}`);
  console.log(`mongodb: ${backends.mongoKind}`);
  const service = await startService(serviceEnv(backends));
  const pid = service.child.pid!;
  const samples: string[] = [`start: ${rssMiB(pid)} MiB`];
  const started = Date.now();
  const timer = setInterval(() => samples.push(`${Math.round((Date.now() - started) / 1000)} s: ${rssMiB(pid)} MiB`), 5_000);
  const result = await load({
    url: `${service.url}/v1/chat/completions`,
    connections: 50,
    total: TOTAL,
    bodies: chatBodies(300),
    headers: { authorization: `Bearer ${BENCH_ADMIN_KEY}` },
  });
  clearInterval(timer);
  samples.push(`after ${result.requests} tracked requests (${Math.round(result.rps)} req/s): ${rssMiB(pid)} MiB`);
  await new Promise((resolve) => setTimeout(resolve, 5_000));
  samples.push(`5 s idle later: ${rssMiB(pid)} MiB`);
  console.log('\n6. Resident memory of the service process (300 distinct users)');
  for (const sample of samples) console.log(`  ${sample}`);
  stopAll();
}

void main().catch((error) => {
  console.error(error);
  stopAll();
  process.exit(1);
});
