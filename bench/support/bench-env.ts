import { startScript } from './processes';

export const BENCH_ADMIN_KEY = 'bench-admin-key-0123456789abcdef';
export const BENCH_MODEL = 'gpt-4o-mini';

/** Limits high enough never to refuse, but finite, so every call takes the reservation path. */
const GENEROUS_TIERS = JSON.stringify({
  FREE: { rolling24hTokens: 1_000_000_000, dailyTokens: 1_000_000_000, monthlyCostUsd: 1_000_000, failMode: 'open' },
});

export interface BenchBackends {
  mongoUri: string;
  mongoKind: string;
  providerUrl: string;
  /** Process ids of the in-process MongoDB (absent with MONGODB_URI) and the provider stand-in. */
  pids: { mongo?: number; provider: number };
}

/** MONGODB_URI when set, else the in-process server in a process of its own; and the instant provider. */
export async function startBackends(): Promise<BenchBackends> {
  const external = process.env.MONGODB_URI;
  const mongo = external ? undefined : await startScript<{ uri: string }>('bench/support/mongo-child.ts');
  const provider = await startScript<{ port: number }>('bench/support/instant-provider.ts');
  return {
    mongoUri: external ?? mongo!.info.uri,
    mongoKind: external ? 'real MongoDB (MONGODB_URI)' : 'in-process MongoDB-compatible server (own process)',
    providerUrl: `http://127.0.0.1:${provider.info.port}/v1`,
    pids: { mongo: mongo?.child.pid, provider: provider.child.pid! },
  };
}

export function serviceEnv(backends: BenchBackends, extra: Record<string, string> = {}): Record<string, string> {
  return {
    MONGODB_URI: backends.mongoUri,
    MONGODB_DB_NAME: `bench_${Date.now()}`,
    AI_PROVIDER: 'compatible',
    AI_BASE_URL: backends.providerUrl,
    AI_API_KEY: 'bench-upstream-key',
    AI_PRIMARY_MODEL: BENCH_MODEL,
    AI_FALLBACK_MODEL: 'none',
    ADMIN_API_KEY: BENCH_ADMIN_KEY,
    TIER_LIMITS: GENEROUS_TIERS,
    ...extra,
  };
}

/** Chat-completion bodies for 100 users, used in rotation. */
export function chatBodies(users = 100): unknown[] {
  return Array.from({ length: users }, (_, i) => ({
    model: BENCH_MODEL,
    messages: [{ role: 'user', content: 'Say hello in one short sentence.' }],
    max_tokens: 50,
    user: `bench-user-${i}`,
  }));
}
