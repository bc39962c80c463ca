/**
 * HTTP load over N keep-alive connections, for a duration or a total count. Closed loop by
 * default: each connection sends its next request as soon as the previous answer arrives.
 * With `rate`, requests are due at a fixed overall rate instead (request i at start + i/rate)
 * and a request sent late because its connection was still busy is timed from when it was
 * due, so slow answers are not hidden by the delay they cause (no coordinated omission). Prints one JSON line with
 * requests/s and exact latency percentiles (ms) over every request.
 *   node -r @swc-node/register bench/support/load.ts '<json options>'
 */
import { Agent, request } from 'node:http';

interface LoadOptions {
  url: string;
  connections: number;
  durationMs?: number;
  total?: number;
  method?: string;
  headers?: Record<string, string>;
  /** Bodies used in rotation (e.g. one per user). */
  bodies?: unknown[];
  warmupMs?: number;
  /** Requests per second over all connections; closed loop when absent. */
  rate?: number;
}

const options = JSON.parse(process.argv[2]) as LoadOptions;
const agent = new Agent({ keepAlive: true, maxSockets: options.connections });
const url = new URL(options.url);
const bodies = (options.bodies ?? [undefined]).map((body) => (body === undefined ? undefined : Buffer.from(JSON.stringify(body))));

function send(body: Buffer | undefined, due?: bigint): Promise<number> {
  return new Promise((resolve, reject) => {
    const started = due ?? process.hrtime.bigint();
    const req = request(
      {
        agent,
        hostname: url.hostname,
        port: url.port,
        path: `${url.pathname}${url.search}`,
        method: options.method ?? (body ? 'POST' : 'GET'),
        headers: { ...(body ? { 'content-type': 'application/json', 'content-length': body.length } : {}), ...options.headers },
      },
      (response) => {
        response.resume();
        response.on('end', () => resolve(response.statusCode === 200 ? Number(process.hrtime.bigint() - started) / 1e6 : -response.statusCode!));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

async function run(durationMs: number | undefined, total: number | undefined, record: boolean) {
  const latencies: number[] = [];
  const failures: Record<string, number> = {};
  let next = 0;
  const deadline = durationMs ? Date.now() + durationMs : Infinity;
  const started = Date.now();
  const origin = process.hrtime.bigint();
  const interval = options.rate ? 1e9 / options.rate : 0;
  await Promise.all(
    Array.from({ length: options.connections }, async () => {
      while (Date.now() < deadline && (total === undefined || next < total)) {
        const index = next++;
        const body = bodies[index % bodies.length];
        let due: bigint | undefined;
        if (interval) {
          due = origin + BigInt(Math.round(index * interval));
          const wait = Number(due - process.hrtime.bigint()) / 1e6;
          if (wait > 0) {
            // On time: the clock starts when we actually send (timer slack is ours, not the server's).
            await new Promise((resolve) => setTimeout(resolve, wait));
            due = undefined;
          }
          if (Date.now() >= deadline) break;
        }
        const latency = await send(body, due);
        if (!record) continue;
        if (latency >= 0) latencies.push(latency);
        else failures[String(-latency)] = (failures[String(-latency)] ?? 0) + 1;
      }
    }),
  );
  return { latencies, failures, elapsedMs: Date.now() - started };
}

async function main() {
  if (options.warmupMs) await run(options.warmupMs, undefined, false);
  const { latencies, failures, elapsedMs } = await run(options.durationMs, options.total, true);
  latencies.sort((a, b) => a - b);
  const at = (q: number) => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? NaN;
  const round = (n: number) => Math.round(n * 1000) / 1000;
  process.stdout.write(
    `${JSON.stringify({ requests: latencies.length, failures, rps: round((latencies.length / elapsedMs) * 1000), p50: round(at(0.5)), p95: round(at(0.95)), p99: round(at(0.99)), max: round(latencies.at(-1) ?? NaN) })}\n`,
  );
  agent.destroy();
}

void main();
