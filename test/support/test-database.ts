import { randomBytes } from 'node:crypto';
import { MongoClient } from 'mongodb';

/** The MongoDB resolved once by global-setup for this test run. */
export function testMongoUri(): string {
  const uri = process.env.TEST_MONGODB_URI;
  if (!uri) throw new Error('TEST_MONGODB_URI is not set: run tests through jest (test/support/global-setup.ts)');
  return uri;
}

export function testMongoKind(): string {
  return process.env.TEST_MONGODB_KIND ?? 'unknown';
}

export function uniqueDbName(prefix = 'test'): string {
  return `${prefix}_${randomBytes(6).toString('hex')}`;
}

/** A database of its own for one test file, with a driver client for asserting on what was stored. */
export async function startTestDatabase(prefix?: string): Promise<{ uri: string; dbName: string; client: MongoClient; stop(): Promise<void> }> {
  const uri = testMongoUri();
  const dbName = uniqueDbName(prefix);
  const client = await MongoClient.connect(uri, { directConnection: testMongoKind() !== 'external' ? true : undefined });
  return {
    uri,
    dbName,
    client,
    async stop() {
      await client.db(dbName).dropDatabase().catch(() => undefined);
      await client.close();
    },
  };
}
