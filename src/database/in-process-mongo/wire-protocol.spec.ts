import { deserialize, Double, Int32, Long, serialize } from 'bson';
import {
  crc32c,
  encodeOpMsgReply,
  encodeOpMsgRequest,
  encodeOpReply,
  MessageFramer,
  OP_MSG,
  OP_QUERY,
  OP_REPLY,
  parseMessage,
  ProtocolError,
} from './wire-protocol';

const body = (doc: object) => Buffer.from(serialize(doc));

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

describe(MessageFramer.name, () => {
  const first = encodeOpMsgRequest(1, body({ ping: 1, $db: 'admin' }));
  const second = encodeOpMsgRequest(2, body({ hello: 1, $db: 'admin' }));

  it('returns nothing until a frame is complete, then the whole frame', () => {
    const framer = new MessageFramer();
    expect(framer.push(first.subarray(0, 3))).toEqual([]);
    expect(framer.push(first.subarray(3, 20))).toEqual([]);
    const messages = framer.push(first.subarray(20));
    expect(messages).toHaveLength(1);
    expect(messages[0].equals(first)).toBe(true);
    expect(framer.bufferedBytes).toBe(0);
  });

  it('splits two messages delivered in one chunk', () => {
    const messages = new MessageFramer().push(Buffer.concat([first, second]));
    expect(messages.map((m) => m.readInt32LE(4))).toEqual([1, 2]);
  });

  it('keeps the tail of a chunk that ends inside the next message', () => {
    const framer = new MessageFramer();
    const both = Buffer.concat([first, second]);
    const split = first.length + 7;
    expect(framer.push(both.subarray(0, split))).toHaveLength(1);
    expect(framer.bufferedBytes).toBe(7);
    expect(framer.push(both.subarray(split)).map((m) => m.readInt32LE(4))).toEqual([2]);
  });

  it('rejects impossible message lengths', () => {
    const bad = Buffer.alloc(16);
    bad.writeInt32LE(8, 0);
    expect(() => new MessageFramer().push(bad)).toThrow(ProtocolError);
    bad.writeInt32LE(100 * 1024 * 1024, 0);
    expect(() => new MessageFramer().push(bad)).toThrow(ProtocolError);
  });
});

describe(parseMessage.name, () => {
  it('parses an OP_MSG body and merges kind-1 document sequences', () => {
    const message = encodeOpMsgRequest(7, body({ insert: 'c', $db: 'd' }), {
      sequences: [['documents', [body({ a: 1 }), body({ a: 2 })]]],
    });
    const request = parseMessage(message);
    expect(request).toEqual({
      kind: 'msg',
      requestId: 7,
      moreToCome: false,
      command: { insert: 'c', $db: 'd', documents: [{ a: 1 }, { a: 2 }] },
    });
  });

  it('keeps int64 and integral doubles typed, and int32 as plain numbers', () => {
    const message = encodeOpMsgRequest(1, body({ find: 'c', a: new Int32(5), b: Long.fromNumber(6), c: new Double(7), d: 7.5, $db: 'd' }));
    const { command } = parseMessage(message) as { command: Record<string, unknown> };
    expect(command.a).toBe(5);
    expect(command.b).toBeInstanceOf(Long);
    expect(command.c).toBeInstanceOf(Double);
    expect(command.d).toBe(7.5);
  });

  it('verifies the CRC-32C checksum when the flag is set', () => {
    const message = encodeOpMsgRequest(3, body({ ping: 1, $db: 'admin' }), { checksum: true });
    expect(parseMessage(message)).toMatchObject({ command: { ping: 1 } });
    const corrupted = Buffer.from(message);
    corrupted[corrupted.length - 1] ^= 0xff;
    expect(() => parseMessage(corrupted)).toThrow('checksum');
  });

  it('computes CRC-32C like the reference check value', () => {
    expect(crc32c(Buffer.from('123456789'))).toBe(0xe3069283);
  });

  it('reports moreToCome so no reply is sent', () => {
    const message = encodeOpMsgRequest(4, body({ insert: 'c', $db: 'd' }), { moreToCome: true });
    expect(parseMessage(message)).toMatchObject({ moreToCome: true });
  });

  it('parses a legacy OP_QUERY handshake', () => {
    expect(parseMessage(opQuery(9, 'admin.$cmd', { isMaster: 1 }))).toEqual({
      kind: 'query',
      requestId: 9,
      fullCollectionName: 'admin.$cmd',
      query: { isMaster: 1 },
    });
  });

  it('rejects a sequence document larger than 16 MiB', () => {
    const huge = body({ blob: 'x'.repeat(16 * 1024 * 1024) });
    const message = encodeOpMsgRequest(1, body({ insert: 'c', $db: 'd' }), { sequences: [['documents', [huge]]] });
    expect(() => parseMessage(message)).toThrow(ProtocolError);
  });

  it('rejects malformed messages', () => {
    const truncated = encodeOpMsgRequest(1, body({ ping: 1 })).subarray(0, 30);
    truncated.writeInt32LE(truncated.length, 0);
    expect(() => parseMessage(truncated)).toThrow(ProtocolError);
    const unknownOp = encodeOpMsgRequest(1, body({ ping: 1 }));
    unknownOp.writeInt32LE(2010, 12);
    expect(() => parseMessage(unknownOp)).toThrow(ProtocolError);
    const twoBodies = encodeOpMsgRequest(1, Buffer.concat([body({ ping: 1 }), Buffer.from([0]), body({ ping: 1 })]));
    expect(() => parseMessage(twoBodies)).toThrow(ProtocolError);
    const badFlags = encodeOpMsgRequest(1, body({ ping: 1 }));
    badFlags.writeUInt32LE(1 << 5, 16);
    expect(() => parseMessage(badFlags)).toThrow(ProtocolError);
  });
});

describe('reply encoding', () => {
  it('frames an OP_MSG reply with responseTo and a kind-0 section', () => {
    const reply = encodeOpMsgReply(42, body({ ok: 1 }));
    expect(reply.readInt32LE(0)).toBe(reply.length);
    expect(reply.readInt32LE(8)).toBe(42);
    expect(reply.readInt32LE(12)).toBe(OP_MSG);
    expect(reply.readUInt32LE(16)).toBe(0);
    expect(reply[20]).toBe(0);
    expect(deserialize(reply.subarray(21))).toEqual({ ok: 1 });
  });

  it('frames an OP_REPLY with one document', () => {
    const reply = encodeOpReply(5, body({ ok: 1 }));
    expect(reply.readInt32LE(0)).toBe(reply.length);
    expect(reply.readInt32LE(8)).toBe(5);
    expect(reply.readInt32LE(12)).toBe(OP_REPLY);
    expect(reply.readInt32LE(32)).toBe(1);
    expect(deserialize(reply.subarray(36))).toEqual({ ok: 1 });
  });
});
