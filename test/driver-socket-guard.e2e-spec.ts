import { MongoClient, MongoNetworkError } from 'mongodb';
import { installDriverSocketGuard } from '../src/database/driver-socket-guard';
import { testMongoUri } from './support/test-database';

interface PooledConnection {
  socket: { destroy(): void; destroyed: boolean };
  closed: boolean;
}

/** The pooled connections of a single-server client (driver internals: the guard is about them). */
function pooledConnections(client: MongoClient): PooledConnection[] {
  const servers = (client as unknown as { topology: { s: { servers: Map<string, { pool: { connections: { toArray?(): PooledConnection[] } & Iterable<PooledConnection> } }> } } }).topology.s.servers;
  const [server] = [...servers.values()];
  const connections = server.pool.connections;
  return connections.toArray ? connections.toArray() : [...connections];
}

function settledWithin<T>(promise: Promise<T>, ms: number): Promise<{ value?: T; error?: unknown; timedOut?: true }> {
  return Promise.race([
    promise.then(
      (value) => ({ value }),
      (error: unknown) => ({ error }),
    ),
    new Promise<{ timedOut: true }>((resolve) => setTimeout(() => resolve({ timedOut: true }), ms).unref()),
  ]);
}

describe('MongoDB driver socket guard', () => {
  let client: MongoClient;

  beforeAll(async () => {
    installDriverSocketGuard();
    client = await MongoClient.connect(testMongoUri(), { directConnection: true, maxPoolSize: 1, serverMonitoringMode: 'poll' });
  });

  afterAll(async () => {
    await client?.close();
  });

  it('fails a command written to a socket destroyed before its close event, and the next command reconnects', async () => {
    const admin = client.db('admin');
    await admin.command({ ping: 1 });
    const [connection] = pooledConnections(client);
    // What Node does when the peer closes: destroyed now, `close` emitted a loop turn later.
    connection.socket.destroy();
    expect(connection.socket.destroyed).toBe(true);
    expect(connection.closed).toBe(false);

    // Without the guard this ping waits forever for a `drain` the destroyed socket never emits.
    const outcome = await settledWithin(admin.command({ ping: 1 }), 10_000);
    expect(outcome.timedOut).toBeUndefined();
    expect(outcome.error).toBeInstanceOf(MongoNetworkError);

    await expect(admin.command({ ping: 1 })).resolves.toMatchObject({ ok: 1 });
  });
});
