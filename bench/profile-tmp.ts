import { readdirSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { load, stopAll } from './support/processes';
import { BENCH_ADMIN_KEY, chatBodies, serviceEnv, startBackends } from './support/bench-env';

async function main() {
  const backends = await startBackends();
  const bodies = chatBodies();
  const headers = { authorization: `Bearer ${BENCH_ADMIN_KEY}` };
  const port = String(20000 + Math.floor(Math.random() * 20000));
  const child = spawn(process.execPath, [...(process.env.PROF_DIR ? ['--cpu-prof', `--cpu-prof-dir=${process.env.PROF_DIR}`] : []), 'dist/main.js'], {
    env: { ...process.env, LOG_LEVEL: 'warn', HOST: '127.0.0.1', PORT: port, RATE_LIMIT_PER_MINUTE: '100000000', MONGODB_MEMORY_SERVER: 'false', ...serviceEnv(backends, { TRACKING_ENABLED: process.env.TRACK ?? 'true' }) },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const svc = { child, url: `http://127.0.0.1:${port}` };
  for (let i = 0; i < 600; i += 1) {
    if (await fetch(`${svc.url}/health/ready`).then((r) => r.ok).catch(() => false)) break;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  await load({ url: `${svc.url}/v1/chat/completions`, connections: 50, durationMs: 3000, bodies, headers });
  const r = await load({ url: `${svc.url}/v1/chat/completions`, connections: Number(process.env.CONNS ?? 50), durationMs: 10000, bodies, headers });
  console.log('rps', Math.round(r.rps), 'p50', r.p50);
  svc.child.kill('SIGINT');
  await new Promise((resolve) => svc.child.on('exit', resolve));
  if (process.env.PROF_DIR) console.log(readdirSync(process.env.PROF_DIR));
  stopAll();
}
void main();
