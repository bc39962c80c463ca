import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import type { Db } from 'mongodb';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import request from 'supertest';
import { createApp } from '../../src/app.factory';
import type { AppConfig, ConfigOverrides } from '../../src/config/app-config';
import { loadConfig } from '../../src/config/load-config';
import { startTestDatabase } from './test-database';

export const TEST_ADMIN_KEY = 'test-admin-key-0123456789abcdef';

export interface LogLine {
  level: number;
  msg: string;
  [field: string]: unknown;
}

/**
 * The app's JSON log, kept in memory so passing tests stay quiet; tests can assert on it.
 * TEST_LOGS=1 prints each app's log when it closes (for a failing test).
 */
class LogCapture {
  private readonly lines: string[] = [];

  write(line: string): void {
    this.lines.push(line);
  }

  entries(): LogLine[] {
    return this.lines.join('').split('\n').filter(Boolean).map((line) => JSON.parse(line) as LogLine);
  }

  flushTo(stream: NodeJS.WritableStream): void {
    if (this.lines.length > 0) stream.write(this.lines.join(''));
  }
}

export interface TestApp {
  app: NestFastifyApplication;
  /** The bootstrap admin key (ADMIN_API_KEY) of this app. */
  adminKey: string;
  config: AppConfig;
  /** The app's own database, through the driver, for asserting on what was stored. */
  db: Db;
  http: ReturnType<NestFastifyApplication['getHttpServer']>;
  /** supertest whose requests carry `Authorization: Bearer <key>` (the bootstrap admin key by default). */
  api(key?: string): ReturnType<typeof request.agent>;
  /** What the app logged so far (at the config's LOG_LEVEL, warn by default). */
  logs(): LogLine[];
  close(): Promise<void>;
}

/** The whole application on the run's MongoDB (a fresh database) and the local Redis. */
export async function createTestApp(overrides: ConfigOverrides = {}): Promise<TestApp> {
  const database = await startTestDatabase('app');
  // An outbox of its own: a shared one would replay one app's records into another app's database.
  const outboxDir = await mkdtemp(join(tmpdir(), 'test-outbox-'));
  const config = loadConfig({
    NODE_ENV: 'test',
    LOG_LEVEL: 'warn',
    MONGODB_URI: database.uri,
    MONGODB_DB_NAME: database.dbName,
    AI_PROVIDER: 'simulated',
    ADMIN_API_KEY: TEST_ADMIN_KEY,
    // Redis outlives test runs: each app gets keys of its own.
    REDIS_KEY_PREFIX: `test:${database.dbName}:`,
    OUTBOX_DIR: outboxDir,
    // JSONL usage logs of test apps stay out of ./logs.
    LOG_DIR: join(outboxDir, 'logs'),
    // Tests that look at pending aggregates must not race a background sweep; sweep tests opt in.
    ROLLUP_SWEEP_INTERVAL_MS: '0',
    ...overrides,
  });
  const capture = new LogCapture();
  const app = await createApp(config, { logDestination: capture });
  await app.init();
  await app.getHttpAdapter().getInstance().ready();
  const adminKey = String(config.ADMIN_API_KEY ?? TEST_ADMIN_KEY);
  const http = app.getHttpServer();
  return {
    app,
    adminKey,
    config,
    db: database.client.db(database.dbName),
    http,
    api: (key = adminKey) => request.agent(http).set('authorization', `Bearer ${key}`),
    logs: () => capture.entries(),
    async close() {
      await app.close();
      if (process.env.TEST_LOGS) capture.flushTo(process.stderr);
      await database.stop();
      await rm(outboxDir, { recursive: true, force: true });
    },
  };
}
