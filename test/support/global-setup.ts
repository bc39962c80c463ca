import { Logger } from '@nestjs/common';
import { loadConfig } from '../../src/config/load-config';
import { resolveDatabase } from '../../src/database/database-resolver';

/**
 * Resolves MongoDB once for the whole run, in the product's order (MONGODB_URI,
 * mongodb-memory-server, in-process server), and hands the URI to every worker.
 */
export default async function globalSetup(): Promise<void> {
  const config = loadConfig({ MONGODB_DATA_DIR: './data/test-mongo' });
  // The resolver's own log lines (fallback, in-memory warning) are for a service's operator; the line below says it for the run.
  Logger.overrideLogger(['error']);
  const database = await resolveDatabase(config);
  process.env.TEST_MONGODB_URI = database.uri;
  process.env.TEST_MONGODB_KIND = database.kind;
  (globalThis as { __TEST_DATABASE__?: unknown }).__TEST_DATABASE__ = database;
  process.stdout.write(`\n[test] MongoDB: ${database.description}\n`);
}
