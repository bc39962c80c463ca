import { ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { join } from 'node:path';

const ROOT = join(__dirname, '..', '..');
const children: ChildProcess[] = [];

/** Starts a TypeScript script in its own process and resolves with the first JSON line it prints. */
export function startScript<T>(script: string, args: string[] = [], env: Record<string, string> = {}): Promise<{ child: ChildProcess; info: T }> {
  const child = spawn(process.execPath, ['-r', '@swc-node/register', join(ROOT, script), ...args], {
    cwd: ROOT,
    env: { ...process.env, SWCRC: 'true', ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  children.push(child);
  return new Promise((resolve, reject) => {
    let buffer = '';
    child.stdout!.on('data', (chunk: Buffer) => {
      buffer += chunk.toString();
      const line = buffer.split('\n').find((candidate) => candidate.trim().startsWith('{'));
      if (line) resolve({ child, info: JSON.parse(line) as T });
    });
    child.on('exit', (code) => reject(new Error(`${script} exited with ${code}`)));
  });
}

/** Runs the load generator in its own process and returns its figures. */
export async function load(options: Record<string, unknown>): Promise<LoadResult> {
  const child = spawn(process.execPath, ['-r', '@swc-node/register', join(ROOT, 'bench/support/load.ts'), JSON.stringify(options)], {
    cwd: ROOT,
    env: { ...process.env, SWCRC: 'true' },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  await new Promise((resolve) => child.on('exit', resolve));
  return JSON.parse(output.trim().split('\n').at(-1)!) as LoadResult;
}

export interface LoadResult {
  requests: number;
  failures: Record<string, number>;
  rps: number;
  p50: number;
  p95: number;
  p99: number;
  max: number;
}

/** The production build (dist/main.js) as a child process, ready when /health/ready answers. */
export async function startService(env: Record<string, string>): Promise<{ child: ChildProcess; url: string }> {
  const port = String(20000 + Math.floor(Math.random() * 20000));
  const child = spawn(process.execPath, [join(ROOT, 'dist/main.js')], {
    cwd: ROOT,
    env: { ...process.env, LOG_LEVEL: 'warn', HOST: '127.0.0.1', PORT: port, RATE_LIMIT_PER_MINUTE: '100000000', MONGODB_MEMORY_SERVER: 'false', ...env },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  children.push(child);
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 300; i += 1) {
    const ready = await fetch(`${url}/health/ready`).then((response) => response.ok).catch(() => false);
    if (ready) return { child, url };
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error('service did not become ready');
}

export function rssMiB(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Math.round(Number(/VmRSS:\s+(\d+)/.exec(status)![1]) / 1024);
}

/** CPU time (ms) a process has used so far, all its threads. */
export function cpuMs(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100; // utime + stime, USER_HZ = 100
}

/** Time (ms) a process's main thread has run and has waited runnable for a CPU (/proc/PID/schedstat). */
export function mainThreadSchedMs(pid: number): { running: number; waiting: number } {
  const [running, waiting] = readFileSync(`/proc/${pid}/schedstat`, 'utf8').trim().split(' ').map(Number);
  return { running: running / 1e6, waiting: waiting / 1e6 };
}

export function machine(): string {
  return `${cpus().length} x ${cpus()[0]?.model ?? 'cpu'}, ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}`;
}

export function stopAll(): void {
  for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
}

process.on('exit', stopAll);
