import { deserialize, Document } from 'bson';
import { normalizeIncoming } from './bson-values';

/** Message framing and (de)serialisation of the MongoDB wire protocol subset the server speaks. */

export const OP_REPLY = 1;
export const OP_QUERY = 2004;
export const OP_COMPRESSED = 2012;
export const OP_MSG = 2013;

export const MAX_BSON_OBJECT_SIZE = 16 * 1024 * 1024;
export const MAX_MESSAGE_SIZE_BYTES = 48_000_000;
const HEADER_SIZE = 16;

const FLAG_CHECKSUM_PRESENT = 1 << 0;
const FLAG_MORE_TO_COME = 1 << 1;
/** Bits 0-15 are "required": a receiver must reject a message with an unknown one set. */
const KNOWN_REQUIRED_FLAGS = FLAG_CHECKSUM_PRESENT | FLAG_MORE_TO_COME;

/** A malformed message: the connection that sent it is closed. */
export class ProtocolError extends Error {
  override name = 'ProtocolError';
}

export interface OpMsgRequest {
  kind: 'msg';
  requestId: number;
  /** The kind-0 body with every kind-1 document sequence merged in under its identifier. */
  command: Document;
  /** The client set moreToCome: it expects no reply (unacknowledged write). */
  moreToCome: boolean;
}

export interface OpQueryRequest {
  kind: 'query';
  requestId: number;
  fullCollectionName: string;
  query: Document;
}

export type WireRequest = OpMsgRequest | OpQueryRequest;

/**
 * Splits a TCP byte stream into whole messages. Chunks may hold part of a message,
 * several messages, or both; `push` returns every message completed so far.
 */
export class MessageFramer {
  /** Bytes received and not yet returned, joined only once the message at their head is complete. */
  private parts: Buffer[] = [];
  private buffered = 0;
  /** Length of the incomplete message at the head (0 while fewer than 4 bytes of it came). */
  private awaited = 0;

  push(chunk: Buffer): Buffer[] {
    this.parts.push(chunk);
    this.buffered += chunk.length;
    // Joining on every chunk would copy a multi-megabyte message once per 64 KiB read.
    if (this.awaited > 0 && this.buffered < this.awaited) return [];
    const pending = this.parts.length === 1 ? this.parts[0] : Buffer.concat(this.parts, this.buffered);
    const messages: Buffer[] = [];
    let offset = 0;
    this.awaited = 0;
    while (pending.length - offset >= 4) {
      const length = pending.readInt32LE(offset);
      if (length < HEADER_SIZE || length > MAX_MESSAGE_SIZE_BYTES) {
        throw new ProtocolError(`invalid message length ${length}`);
      }
      if (pending.length - offset < length) {
        this.awaited = length;
        break;
      }
      messages.push(pending.subarray(offset, offset + length));
      offset += length;
    }
    const rest = pending.subarray(offset);
    this.parts = rest.length > 0 ? [rest] : [];
    this.buffered = rest.length;
    return messages;
  }

  get bufferedBytes(): number {
    return this.buffered;
  }
}

const DESERIALIZE_OPTIONS = { promoteValues: false, bsonRegExp: false } as const;

/** mongod's BSONObjMaxInternalSize: a command body may exceed a document's limit by 16 KiB. */
const MAX_COMMAND_BODY_SIZE = MAX_BSON_OBJECT_SIZE + 16 * 1024;

/**
 * Reads one document. Size limits are enforced here, where sizes are known for free:
 * a document in a sequence (an inserted document) may not exceed 16 MiB, so stored
 * documents never need re-measuring. Drivers check this before sending.
 */
function readDocument(message: Buffer, offset: number, end: number, maxSize: number): { doc: Document; next: number } {
  if (offset + 5 > end) throw new ProtocolError('truncated BSON document');
  const size = message.readInt32LE(offset);
  if (size < 5 || offset + size > end) throw new ProtocolError('invalid BSON document size');
  if (size > maxSize) throw new ProtocolError(`BSON document of ${size} bytes exceeds the maximum of ${maxSize}`);
  let doc: Document;
  try {
    doc = deserialize(message.subarray(offset, offset + size), DESERIALIZE_OPTIONS);
  } catch (error) {
    throw new ProtocolError(`invalid BSON: ${(error as Error).message}`);
  }
  return { doc: normalizeIncoming(doc), next: offset + size };
}

function readCString(message: Buffer, offset: number, end: number): { value: string; next: number } {
  const terminator = message.indexOf(0, offset);
  if (terminator === -1 || terminator >= end) throw new ProtocolError('unterminated cstring');
  return { value: message.toString('utf8', offset, terminator), next: terminator + 1 };
}

export function parseMessage(message: Buffer): WireRequest {
  if (message.length < HEADER_SIZE) throw new ProtocolError('message shorter than its header');
  const requestId = message.readInt32LE(4);
  const opCode = message.readInt32LE(12);
  if (opCode === OP_MSG) return parseOpMsg(message, requestId);
  if (opCode === OP_QUERY) return parseOpQuery(message, requestId);
  throw new ProtocolError(`unsupported opCode ${opCode}`);
}

function parseOpMsg(message: Buffer, requestId: number): OpMsgRequest {
  if (message.length < HEADER_SIZE + 5) throw new ProtocolError('OP_MSG too short');
  const flags = message.readUInt32LE(HEADER_SIZE);
  if (flags & 0xffff & ~KNOWN_REQUIRED_FLAGS) throw new ProtocolError(`unknown required OP_MSG flags ${flags}`);
  let end = message.length;
  if (flags & FLAG_CHECKSUM_PRESENT) {
    end -= 4;
    if (end < HEADER_SIZE + 4) throw new ProtocolError('OP_MSG too short for its checksum');
    if (crc32c(message.subarray(0, end)) !== message.readUInt32LE(end)) {
      throw new ProtocolError('OP_MSG checksum mismatch');
    }
  }
  let body: Document | undefined;
  const sequences: Array<[string, Document[]]> = [];
  let offset = HEADER_SIZE + 4;
  while (offset < end) {
    const kind = message[offset++];
    if (kind === 0) {
      if (body) throw new ProtocolError('OP_MSG with more than one body section');
      const read = readDocument(message, offset, end, MAX_COMMAND_BODY_SIZE);
      body = read.doc;
      offset = read.next;
    } else if (kind === 1) {
      if (offset + 4 > end) throw new ProtocolError('truncated document sequence');
      const sectionEnd = offset + message.readInt32LE(offset);
      if (sectionEnd > end || sectionEnd < offset + 5) throw new ProtocolError('invalid document sequence size');
      const identifier = readCString(message, offset + 4, sectionEnd);
      const docs: Document[] = [];
      let cursor = identifier.next;
      while (cursor < sectionEnd) {
        const read = readDocument(message, cursor, sectionEnd, MAX_BSON_OBJECT_SIZE);
        docs.push(read.doc);
        cursor = read.next;
      }
      sequences.push([identifier.value, docs]);
      offset = sectionEnd;
    } else {
      throw new ProtocolError(`unknown OP_MSG section kind ${kind}`);
    }
  }
  if (!body) throw new ProtocolError('OP_MSG without a body section');
  for (const [identifier, docs] of sequences) {
    if (identifier in body) throw new ProtocolError(`duplicate field '${identifier}' in OP_MSG`);
    body[identifier] = docs;
  }
  return { kind: 'msg', requestId, command: body, moreToCome: (flags & FLAG_MORE_TO_COME) !== 0 };
}

function parseOpQuery(message: Buffer, requestId: number): OpQueryRequest {
  const name = readCString(message, HEADER_SIZE + 4, message.length);
  // numberToSkip and numberToReturn follow; only commands on `$cmd` are served.
  const { doc } = readDocument(message, name.next + 8, message.length, MAX_COMMAND_BODY_SIZE);
  return { kind: 'query', requestId, fullCollectionName: name.value, query: doc };
}

let nextRequestId = 1;

function header(length: number, responseTo: number, opCode: number): Buffer {
  const buffer = Buffer.allocUnsafe(HEADER_SIZE);
  buffer.writeInt32LE(length, 0);
  buffer.writeInt32LE(nextRequestId, 4);
  nextRequestId = nextRequestId === 0x7fffffff ? 1 : nextRequestId + 1;
  buffer.writeInt32LE(responseTo, 8);
  buffer.writeInt32LE(opCode, 12);
  return buffer;
}

/** An OP_MSG reply with a single body section holding an already serialised document. */
export function encodeOpMsgReply(responseTo: number, body: Buffer): Buffer {
  const length = HEADER_SIZE + 4 + 1 + body.length;
  const prefix = Buffer.alloc(5); // flagBits 0, section kind 0
  return Buffer.concat([header(length, responseTo, OP_MSG), prefix, body], length);
}

/** A legacy OP_REPLY carrying one document, the answer to an OP_QUERY handshake. */
export function encodeOpReply(responseTo: number, doc: Buffer): Buffer {
  const fields = Buffer.alloc(20);
  fields.writeInt32LE(8, 0); // responseFlags: AwaitCapable, as mongod sets it
  // cursorID (int64) 0, startingFrom 0
  fields.writeInt32LE(1, 16); // numberReturned
  const length = HEADER_SIZE + fields.length + doc.length;
  return Buffer.concat([header(length, responseTo, OP_REPLY), fields, doc], length);
}

/** An OP_MSG request, as a driver would send it (used by tests). */
export function encodeOpMsgRequest(
  requestId: number,
  body: Buffer,
  options: { sequences?: Array<[string, Buffer[]]>; checksum?: boolean; moreToCome?: boolean } = {},
): Buffer {
  const parts: Buffer[] = [Buffer.from([0]), body];
  for (const [identifier, docs] of options.sequences ?? []) {
    const name = Buffer.from(identifier + '\0', 'utf8');
    const size = Buffer.alloc(4);
    size.writeInt32LE(4 + name.length + docs.reduce((n, d) => n + d.length, 0));
    parts.push(Buffer.from([1]), size, name, ...docs);
  }
  const flags = Buffer.alloc(4);
  flags.writeUInt32LE((options.checksum ? FLAG_CHECKSUM_PRESENT : 0) | (options.moreToCome ? FLAG_MORE_TO_COME : 0));
  const payload = Buffer.concat([flags, ...parts]);
  const length = HEADER_SIZE + payload.length + (options.checksum ? 4 : 0);
  const head = Buffer.alloc(HEADER_SIZE);
  head.writeInt32LE(length, 0);
  head.writeInt32LE(requestId, 4);
  head.writeInt32LE(OP_MSG, 12);
  const message = Buffer.concat([head, payload]);
  if (!options.checksum) return message;
  const sum = Buffer.alloc(4);
  sum.writeUInt32LE(crc32c(message));
  return Buffer.concat([message, sum]);
}

const CRC32C_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0x82f63b78 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

/** CRC-32C (Castagnoli), the OP_MSG checksum. */
export function crc32c(data: Uint8Array): number {
  let crc = 0xffffffff;
  for (let i = 0; i < data.length; i++) crc = CRC32C_TABLE[(crc ^ data[i]) & 0xff] ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}
