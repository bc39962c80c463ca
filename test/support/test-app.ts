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
  const app = await createApp(config);
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
    async close() {
      await app.close();
      await database.stop();
      await rm(outboxDir, { recursive: true, force: true });
    },
  };
}
