import { deserialize, Document, serialize } from 'bson';
import { connect, Socket } from 'node:net';
import { InProcessMongoServer } from './in-process-mongo.server';
import { encodeOpMsgRequest, MessageFramer, OP_QUERY, OP_REPLY } from './wire-protocol';

const body = (doc: object) => Buffer.from(serialize(doc));

/** A raw wire-protocol client collecting decoded replies. */
class RawClient {
  readonly replies: Array<{ responseTo: number; opCode: number; doc: Document }> = [];
  closed = false;
  private readonly framer = new MessageFramer();
  private waiters: Array<() => void> = [];

  private constructor(readonly socket: Socket) {
    socket.on('data', (chunk) => {
      for (const message of this.framer.push(chunk)) {
        const opCode = message.readInt32LE(12);
        const docStart = opCode === OP_REPLY ? 36 : 21;
        this.replies.push({ responseTo: message.readInt32LE(8), opCode, doc: deserialize(message.subarray(docStart)) });
      }
      this.wake();
    });
    socket.on('close', () => {
      this.closed = true;
      this.wake();
    });
  }

  static open(uri: string): Promise<RawClient> {
    const { hostname, port } = new URL(uri);
    return new Promise((resolve, reject) => {
      const socket = connect(Number(port), hostname, () => resolve(new RawClient(socket)));
      socket.once('error', reject);
    });
  }

  private wake(): void {
    const waiters = this.waiters;
    this.waiters = [];
    waiters.forEach((wake) => wake());
  }

  async waitFor(condition: () => boolean, timeoutMs = 2_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!condition()) {
      if (Date.now() > deadline) throw new Error('timed out waiting for the server');
      await new Promise<void>((resolve) => {
        this.waiters.push(resolve);
        setTimeout(resolve, 50);
      });
    }
  }

  async command(requestId: number, command: Document): Promise<Document> {
    this.socket.write(encodeOpMsgRequest(requestId, body(command)));
    await this.waitFor(() => this.replies.some((reply) => reply.responseTo === requestId));
    return this.replies.find((reply) => reply.responseTo === requestId)!.doc;
  }
}

function opQuery(requestId: number, collection: string, query: object): Buffer {
  const name = Buffer.from(collection + '\0');
  const doc = body(query);
  const message = Buffer.alloc(16 + 4 + name.length + 8 + doc.length);
  message.writeInt32LE(message.length, 0);
  message.writeInt32LE(requestId, 4);
  message.writeInt32LE(OP_QUERY, 12);
  name.copy(message, 20);
  message.writeInt32LE(-1, 20 + name.length + 4);
  doc.copy(message, 20 + name.length + 8);
  return message;
}

describe(InProcessMongoServer.name, () => {
  let server: InProcessMongoServer;
  const clients: RawClient[] = [];
  const open = async () => {
    const client = await RawClient.open(server.uri);
    clients.push(client);
    return client;
  };

  beforeEach(async () => {
    server = await InProcessMongoServer.start();
  });

  afterEach(async () => {
    clients.splice(0).forEach((client) => client.socket.destroy());
    await server.stop();
  });

  it('listens on loopback with a random port by default', () => {
    expect(server.uri).toMatch(/^mongodb:\/\/127\.0\.0\.1:\d+\/$/);
  });

  it('answers the legacy OP_QUERY handshake with an OP_REPLY and refuses other OP_QUERY commands', async () => {
    const client = await open();
    client.socket.write(opQuery(11, 'admin.$cmd', { isMaster: 1, helloOk: true }));
    client.socket.write(opQuery(12, 'app.$cmd', { find: 'c' }));
    await client.waitFor(() => client.replies.length === 2);
    const [handshake, refused] = client.replies;
    expect(handshake).toMatchObject({ responseTo: 11, opCode: OP_REPLY, doc: { ismaster: true, helloOk: true, ok: 1 } });
    expect(handshake.doc.setName).toBeUndefined();
    expect(refused.doc).toMatchObject({ ok: 0, code: 352 });
  });

  it('answers two messages that arrive in one chunk, in order', async () => {
    const client = await open();
    client.socket.write(
      Buffer.concat([
        encodeOpMsgRequest(1, body({ ping: 1, $db: 'admin' })),
        encodeOpMsgRequest(2, body({ hello: 1, $db: 'admin' })),
      ]),
    );
    await client.waitFor(() => client.replies.length === 2);
    expect(client.replies.map((reply) => reply.responseTo)).toEqual([1, 2]);
    expect(client.replies[1].doc).toMatchObject({ isWritablePrimary: true, maxWireVersion: 21 });
  });

  it('serves a message written one byte at a time', async () => {
    const client = await open();
    const message = encodeOpMsgRequest(3, body({ ping: 1, $db: 'admin' }));
    for (const byte of message) client.socket.write(Buffer.from([byte]));
    await client.waitFor(() => client.replies.length === 1);
    expect(client.replies[0].doc).toEqual({ ok: 1 });
  });

  it('sends no reply to a moreToCome write but applies it', async () => {
    const client = await open();
    client.socket.write(
      encodeOpMsgRequest(4, body({ insert: 'c', $db: 'app' }), {
        moreToCome: true,
        sequences: [['documents', [body({ _id: 1 })]]],
      }),
    );
    const count = await client.command(5, { count: 'c', $db: 'app' });
    expect(count).toMatchObject({ n: 1, ok: 1 });
    expect(client.replies.map((reply) => reply.responseTo)).toEqual([5]);
  });

  it('closes only the connection that sent a malformed message', async () => {
    const healthy = await open();
    const broken = await open();
    const garbage = Buffer.alloc(32, 0xff);
    garbage.writeInt32LE(32, 0);
    broken.socket.write(garbage);
    await broken.waitFor(() => broken.closed);
    expect(await healthy.command(6, { ping: 1, $db: 'admin' })).toEqual({ ok: 1 });
    const again = await open();
    expect(await again.command(7, { ping: 1, $db: 'admin' })).toEqual({ ok: 1 });
  });

  it('closes client sockets on stop', async () => {
    const client = await open();
    await client.command(8, { ping: 1, $db: 'admin' });
    await server.stop();
    await client.waitFor(() => client.closed);
    server = await InProcessMongoServer.start();
  });
});
