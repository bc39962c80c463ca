import { Document, Long, serialize } from 'bson';
import { randomBytes } from 'node:crypto';
import { asBuffer } from './bson-values';
import { ErrorCode, MongoCommandError } from './mongo-error';
import { Projector } from './query-engine';
import { MAX_BSON_OBJECT_SIZE } from './wire-protocol';

/** A reply that is already BSON (cursor batches are assembled from per-document buffers). */
export class SerializedReply {
  constructor(readonly bytes: Buffer) {}
}

export type CommandReply = Document | SerializedReply;

export const DEFAULT_FIRST_BATCH_SIZE = 101;
/** mongod's cursorTimeoutMillis default. */
export const CURSOR_TIMEOUT_MS = 10 * 60 * 1000;
/** A batch stops growing at 16 MiB, as mongod's does; the margin is for the envelope. */
const MAX_BATCH_BYTES = MAX_BSON_OBJECT_SIZE - 64 * 1024;
const SERIALIZE_OPTIONS = { checkKeys: false, ignoreUndefined: true } as const;

interface ServerCursor {
  id: Long;
  ns: string;
  /** Stored documents are immutable, so a cursor can hold them without copying. */
  docs: Document[];
  position: number;
  project?: Projector;
  lastUsed: number;
  noTimeout: boolean;
}

export interface OpenCursorOptions {
  batchSize?: number;
  singleBatch?: boolean;
  project?: Projector;
  noTimeout?: boolean;
}

function takeBatch(cursor: ServerCursor, maxCount: number): Buffer[] {
  const batch: Buffer[] = [];
  let bytes = 0;
  while (cursor.position < cursor.docs.length && batch.length < maxCount) {
    const doc = cursor.docs[cursor.position];
    const bytesOfDoc = asBuffer(serialize(cursor.project ? cursor.project(doc) : doc, SERIALIZE_OPTIONS));
    if (batch.length > 0 && bytes + bytesOfDoc.length > MAX_BATCH_BYTES) break;
    batch.push(bytesOfDoc);
    bytes += bytesOfDoc.length;
    cursor.position++;
  }
  return batch;
}

/** `{ cursor: { <field>: [...batch], id, ns }, ok: 1 }`, written directly around the document bytes. */
export function cursorReply(field: 'firstBatch' | 'nextBatch', batch: Buffer[], id: Long, ns: string): SerializedReply {
  const indexNames = batch.map((_, i) => String(i));
  const arraySize = 4 + batch.reduce((n, doc, i) => n + 1 + indexNames[i].length + 1 + doc.length, 0) + 1;
  const nsBytes = Buffer.byteLength(ns, 'utf8');
  const cursorSize = 4 + (1 + field.length + 1 + arraySize) + (1 + 3 + 8) + (1 + 3 + 4 + nsBytes + 1) + 1;
  const totalSize = 4 + (1 + 7 + cursorSize) + (1 + 3 + 8) + 1;
  const out = Buffer.allocUnsafe(totalSize);
  let at = 0;
  const int32 = (n: number) => (at = out.writeInt32LE(n, at));
  const byte = (n: number) => (at = out.writeUInt8(n, at));
  const cstring = (s: string) => {
    at += out.write(s, at, 'utf8');
    byte(0);
  };
  int32(totalSize);
  byte(0x03);
  cstring('cursor');
  int32(cursorSize);
  byte(0x04);
  cstring(field);
  int32(arraySize);
  batch.forEach((doc, i) => {
    byte(0x03);
    cstring(indexNames[i]);
    at += doc.copy(out, at);
  });
  byte(0);
  byte(0x12);
  cstring('id');
  at = out.writeInt32LE(id.low, at);
  at = out.writeInt32LE(id.high, at);
  byte(0x02);
  cstring('ns');
  int32(nsBytes + 1);
  cstring(ns);
  byte(0);
  byte(0x01);
  cstring('ok');
  at = out.writeDoubleLE(1, at);
  byte(0);
  return new SerializedReply(out);
}

/** Open server cursors, keyed by id; idle ones expire like mongod's (10 minutes). */
export class CursorStore {
  private readonly cursors = new Map<string, ServerCursor>();

  private newId(): Long {
    for (;;) {
      const id = Long.fromBytesLE([...randomBytes(8)]).and(Long.MAX_VALUE);
      if (!id.isZero() && !this.cursors.has(id.toString())) return id;
    }
  }

  /** Returns the first batch; keeps a cursor open only when documents remain. */
  open(ns: string, docs: Document[], options: OpenCursorOptions, now: number): SerializedReply {
    const cursor: ServerCursor = {
      id: Long.ZERO,
      ns,
      docs,
      position: 0,
      project: options.project,
      lastUsed: now,
      noTimeout: options.noTimeout === true,
    };
    const batch = takeBatch(cursor, options.batchSize ?? DEFAULT_FIRST_BATCH_SIZE);
    if (cursor.position < docs.length && !options.singleBatch) {
      cursor.id = this.newId();
      this.cursors.set(cursor.id.toString(), cursor);
    }
    return cursorReply('firstBatch', batch, cursor.id, ns);
  }

  getMore(id: Long, ns: string, batchSize: number | undefined, now: number): SerializedReply {
    const cursor = this.cursors.get(id.toString());
    if (!cursor) throw new MongoCommandError(ErrorCode.CursorNotFound, `cursor id ${id.toString()} not found`);
    if (cursor.ns !== ns) {
      throw new MongoCommandError(
        ErrorCode.Unauthorized,
        `Requested getMore on namespace '${ns}', but cursor belongs to a different namespace ${cursor.ns}`,
      );
    }
    cursor.lastUsed = now;
    const batch = takeBatch(cursor, batchSize || Infinity);
    const exhausted = cursor.position >= cursor.docs.length;
    if (exhausted) this.cursors.delete(id.toString());
    return cursorReply('nextBatch', batch, exhausted ? Long.ZERO : cursor.id, ns);
  }

  kill(ns: string, ids: Long[]): { killed: Long[]; notFound: Long[] } {
    const killed: Long[] = [];
    const notFound: Long[] = [];
    for (const id of ids) {
      const cursor = this.cursors.get(id.toString());
      if (cursor && cursor.ns === ns) {
        this.cursors.delete(id.toString());
        killed.push(id);
      } else notFound.push(id);
    }
    return { killed, notFound };
  }

  /** Drops the cursors of a collection (`db.coll`) or a whole database (`db`) that went away. */
  killNamespace(ns: string, wholeDatabase = false): void {
    for (const [key, cursor] of this.cursors) {
      if (wholeDatabase ? cursor.ns.startsWith(ns + '.') : cursor.ns === ns) this.cursors.delete(key);
    }
  }

  expireIdle(now: number): void {
    for (const [key, cursor] of this.cursors) {
      if (!cursor.noTimeout && now - cursor.lastUsed > CURSOR_TIMEOUT_MS) this.cursors.delete(key);
    }
  }

  get openCount(): number {
    return this.cursors.size;
  }
}
