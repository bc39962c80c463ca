import { Logger } from '@nestjs/common';
import { mkdirSync } from 'node:fs';
import { resolve } from 'node:path';
import type { AppConfig } from '../config/app-config';
import { InProcessMongoServer } from './in-process-mongo/in-process-mongo.server';

export type DatabaseKind = 'external' | 'memory-server' | 'in-process';

export interface ResolvedDatabase {
  kind: DatabaseKind;
  uri: string;
  /** Human-readable description for logs and /health/ready (never includes credentials). */
  description: string;
  stop(): Promise<void>;
}

type DatabaseConfig = Pick<
  AppConfig,
  'MONGODB_URI' | 'MONGODB_MEMORY_SERVER' | 'MONGODB_DATA_DIR' | 'MONGODB_MEMORY_SERVER_TIMEOUT_MS'
>;

const logger = new Logger('Database');

export function redactUri(uri: string): string {
  return uri.replace(/\/\/([^@/]+)@/, '//***@');
}

/**
 * Resolves where MongoDB lives, once per process start:
 * MONGODB_URI, else mongodb-memory-server (a real mongod, when a binary can be had),
 * else the in-process wire-compatible server.
 */
export async function resolveDatabase(config: DatabaseConfig): Promise<ResolvedDatabase> {
  if (config.MONGODB_URI) {
    const description = `MongoDB at ${redactUri(config.MONGODB_URI)} (MONGODB_URI)`;
    logger.log(`Using ${description}`);
    return { kind: 'external', uri: config.MONGODB_URI, description, stop: async () => undefined };
  }

  if (config.MONGODB_MEMORY_SERVER) {
    const memory = await tryMemoryServer(config);
    if (memory) return memory;
  }

  const server = await InProcessMongoServer.start();
  const description = `in-process MongoDB-compatible server at ${server.uri}`;
  logger.warn(
    `!!! Using the ${description}: DATA LIVES IN MEMORY ONLY and is lost when the process exits. ` +
      'Set MONGODB_URI (e.g. docker compose up) for durable storage.',
  );
  return { kind: 'in-process', uri: server.uri, description, stop: () => server.stop() };
}

async function tryMemoryServer(config: DatabaseConfig): Promise<ResolvedDatabase | undefined> {
  const started = Date.now();
  try {
    // Loaded lazily: it is only needed on this path.
    const core = await import('mongodb-memory-server-core');
    const { ResolveConfigVariables, setDefaultValue } = await import('mongodb-memory-server-core/lib/util/resolveConfig');
    // One download attempt, no multi-second retry loop when the binary cannot be fetched.
    setDefaultValue(ResolveConfigVariables.MAX_RETRIES, '0');
    const dbPath = resolve(config.MONGODB_DATA_DIR);
    mkdirSync(dbPath, { recursive: true });
    const starting = (async () => {
      // Finding (or downloading) the binary first: MongoMemoryServer.create prints a failure's whole
      // stack with console.warn before rethrowing it, and offline that failure is the usual one.
      await core.MongoBinary.getPath();
      return withConsoleWarnSilenced(() => core.MongoMemoryServer.create({ instance: { dbPath, storageEngine: 'wiredTiger' } }));
    })();
    const server = await withTimeout(starting, config.MONGODB_MEMORY_SERVER_TIMEOUT_MS);
    const uri = server.getUri();
    const description = `mongodb-memory-server (real mongod) at ${uri}, data in ${dbPath}`;
    logger.log(`Using ${description}`);
    return { kind: 'memory-server', uri, description, stop: async () => void (await server.stop({ doCleanup: false })) };
  } catch (error) {
    logger.log(`mongodb-memory-server unavailable after ${Date.now() - started} ms (${oneLine(error)}); falling back`);
    return undefined;
  }
}

/** A library error as one readable line: messages such as DownloadError's end in an empty "Details:". */
export function oneLine(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  const details = error && typeof error === 'object' && 'msg' in error && typeof error.msg === 'string' ? error.msg : undefined;
  const text = message.replace(/\s+/g, ' ').replace(/,? Details: ?$/, '').trim();
  return details && !text.includes(details) ? `${text}: ${details}` : text;
}

/** The library reports a failed start on the console and also throws it; the thrown error is what gets logged. */
async function withConsoleWarnSilenced<T>(run: () => Promise<T>): Promise<T> {
  const warn = console.warn;
  console.warn = () => undefined;
  try {
    return await run();
  } finally {
    console.warn = warn;
  }
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`gave up after ${ms} ms`)), ms);
    timer.unref();
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
