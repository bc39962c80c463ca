import { Document, serialize } from 'bson';
import { AddressInfo, createServer, Server, Socket } from 'node:net';
import { asBuffer } from './bson-values';
import { dispatchCommand } from './command-dispatcher';
import { CommandContext } from './command-types';
import { CommandReply, CursorStore, SerializedReply } from './cursor-store';
import { MemoryStorage } from './memory-storage';
import { ErrorCode, MongoCommandError } from './mongo-error';
import {
  encodeOpMsgReply,
  encodeOpReply,
  MAX_BSON_OBJECT_SIZE,
  MessageFramer,
  OpQueryRequest,
  parseMessage,
} from './wire-protocol';

/** mongod's TTL monitor runs every 60 s; this one runs more often so tests can wait for it. */
export const DEFAULT_TTL_MONITOR_INTERVAL_MS = 5_000;

export interface InProcessMongoServerOptions {
  host?: string;
  port?: number;
  /** How often expired TTL documents and idle cursors are removed. */
  ttlMonitorIntervalMs?: number;
}

const HANDSHAKE_COMMANDS = new Set(['hello', 'isMaster', 'ismaster']);
const SERIALIZE_OPTIONS = { checkKeys: false, ignoreUndefined: true } as const;

const errorReply = (error: MongoCommandError) => asBuffer(serialize(error.toReply()));

function serializeReply(reply: CommandReply): Buffer {
  if (reply instanceof SerializedReply) return reply.bytes;
  let bytes: Buffer;
  try {
    bytes = asBuffer(serialize(reply, SERIALIZE_OPTIONS));
  } catch (error) {
    return errorReply(new MongoCommandError(ErrorCode.InternalError, `cannot serialize the reply: ${(error as Error).message}`));
  }
  if (bytes.length > MAX_BSON_OBJECT_SIZE + 16 * 1024) {
    return errorReply(new MongoCommandError(ErrorCode.BSONObjectTooLarge, 'BSONObj size is larger than the maximum of 16MB'));
  }
  return bytes;
}

/**
 * An in-process, MongoDB-wire-compatible server for tests and offline use: a standalone
 * "MongoDB 7.0" holding everything in memory. It implements a documented subset of
 * commands and answers everything else with the error mongod would give for an unknown
 * command or a BadValue, so nothing passes here that would fail on a real server.
 */
export class InProcessMongoServer {
  readonly uri: string;
  private readonly storage = new MemoryStorage();
  private readonly cursors = new CursorStore();
  private readonly sockets = new Set<Socket>();
  private nextConnectionId = 1;
  private readonly monitor: NodeJS.Timeout;

  private constructor(
    private readonly server: Server,
    host: string,
    port: number,
    ttlMonitorIntervalMs: number,
  ) {
    this.uri = `mongodb://${host.includes(':') ? `[${host}]` : host}:${port}/`;
    this.monitor = setInterval(() => this.sweep(), ttlMonitorIntervalMs);
    this.monitor.unref();
    server.on('connection', (socket) => this.accept(socket));
  }

  static async start(options: InProcessMongoServerOptions = {}): Promise<InProcessMongoServer> {
    const host = options.host ?? '127.0.0.1';
    const server = createServer({ noDelay: true });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(options.port ?? 0, host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    const { port } = server.address() as AddressInfo;
    return new InProcessMongoServer(server, host, port, options.ttlMonitorIntervalMs ?? DEFAULT_TTL_MONITOR_INTERVAL_MS);
  }

  async stop(): Promise<void> {
    clearInterval(this.monitor);
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const socket of this.sockets) socket.destroy();
    this.sockets.clear();
    await closed;
  }

  /** One pass of the TTL monitor (also expires idle cursors). */
  sweep(now = Date.now()): void {
    this.storage.removeExpired(now);
    this.cursors.expireIdle(now);
  }

  private accept(socket: Socket): void {
    this.sockets.add(socket);
    const framer = new MessageFramer();
    const context: CommandContext = {
      storage: this.storage,
      cursors: this.cursors,
      connectionId: this.nextConnectionId++,
      now: () => Date.now(),
    };
    socket.on('data', (chunk: Buffer) => {
      try {
        for (const message of framer.push(chunk)) this.handle(socket, message, context);
      } catch {
        // A malformed message ends this connection only.
        socket.destroy();
      }
    });
    socket.on('error', () => socket.destroy());
    socket.on('close', () => this.sockets.delete(socket));
  }

  private handle(socket: Socket, message: Buffer, context: CommandContext): void {
    const request = parseMessage(message);
    if (request.kind === 'query') {
      socket.write(encodeOpReply(request.requestId, serializeReply(this.legacyCommand(request, context))));
      return;
    }
    const reply = dispatchCommand(request.command, context);
    if (!request.moreToCome) socket.write(encodeOpMsgReply(request.requestId, serializeReply(reply)));
  }

  /** OP_QUERY is only the connection handshake of older drivers, as on mongod 6+. */
  private legacyCommand(request: OpQueryRequest, context: CommandContext): Document {
    const [db, ...rest] = request.fullCollectionName.split('.');
    const command: Document = '$query' in request.query ? request.query.$query : request.query;
    const name = Object.keys(command)[0];
    if (rest.join('.') !== '$cmd' || !HANDSHAKE_COMMANDS.has(name)) {
      return new MongoCommandError(
        ErrorCode.UnsupportedOpQueryCommand,
        `Unsupported OP_QUERY command: ${name}. The client driver may require an upgrade.`,
      ).toReply();
    }
    return dispatchCommand(command, context, db) as Document;
  }
}
