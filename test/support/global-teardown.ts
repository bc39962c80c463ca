import type { ResolvedDatabase } from '../../src/database/database-resolver';

export default async function globalTeardown(): Promise<void> {
  const database = (globalThis as { __TEST_DATABASE__?: ResolvedDatabase }).__TEST_DATABASE__;
  await database?.stop();
}
