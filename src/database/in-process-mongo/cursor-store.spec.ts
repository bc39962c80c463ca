import { deserialize, Document, Long } from 'bson';
import { CURSOR_TIMEOUT_MS, CursorStore, SerializedReply } from './cursor-store';
import { MongoCommandError } from './mongo-error';

const decode = (reply: SerializedReply) => deserialize(reply.bytes, { promoteLongs: false }) as Document;
const docs = Array.from({ length: 250 }, (_, i) => ({ _id: i }));

describe(CursorStore.name, () => {
  it('returns 101 documents first by default, then the rest, ending with cursor id 0', () => {
    const store = new CursorStore();
    const first = decode(store.open('db.c', docs, {}, 0));
    expect(first.ok).toBe(1);
    expect(first.cursor.ns).toBe('db.c');
    expect(first.cursor.firstBatch).toHaveLength(101);
    expect(first.cursor.id).toBeInstanceOf(Long);
    const next = decode(store.getMore(first.cursor.id, 'db.c', 100, 0));
    expect(next.cursor.nextBatch.map((d: Document) => d._id)).toEqual(Array.from({ length: 100 }, (_, i) => 101 + i));
    const last = decode(store.getMore(first.cursor.id, 'db.c', undefined, 0));
    expect(last.cursor.nextBatch).toHaveLength(49);
    expect(last.cursor.id.isZero()).toBe(true);
    expect(store.openCount).toBe(0);
  });

  it('closes at once when everything fits, or with singleBatch', () => {
    const store = new CursorStore();
    expect(decode(store.open('db.c', docs.slice(0, 5), {}, 0)).cursor.id.isZero()).toBe(true);
    expect(decode(store.open('db.c', docs, { batchSize: 2, singleBatch: true }, 0)).cursor.id.isZero()).toBe(true);
    expect(store.openCount).toBe(0);
  });

  it('expires idle cursors and reports them as not found', () => {
    const store = new CursorStore();
    const { cursor } = decode(store.open('db.c', docs, { batchSize: 1 }, 0));
    store.expireIdle(CURSOR_TIMEOUT_MS + 1);
    expect(() => store.getMore(cursor.id, 'db.c', 1, CURSOR_TIMEOUT_MS + 2)).toThrow(MongoCommandError);
  });

  it('kills cursors by id and refuses a getMore on another namespace', () => {
    const store = new CursorStore();
    const { cursor } = decode(store.open('db.c', docs, { batchSize: 1 }, 0));
    expect(() => store.getMore(cursor.id, 'db.other', 1, 0)).toThrow('different namespace');
    const { killed, notFound } = store.kill('db.c', [cursor.id, Long.fromNumber(12345)]);
    expect(killed).toEqual([cursor.id]);
    expect(notFound).toEqual([Long.fromNumber(12345)]);
  });

  it('stops a batch at 16 MiB whatever the batch size', () => {
    const store = new CursorStore();
    const big = Array.from({ length: 20 }, (_, i) => ({ _id: i, blob: 'x'.repeat(1024 * 1024) }));
    const first = decode(store.open('db.c', big, { batchSize: 1000 }, 0));
    expect(first.cursor.firstBatch.length).toBeLessThan(16);
    expect(first.cursor.firstBatch.length).toBeGreaterThan(10);
    const rest = decode(store.getMore(first.cursor.id, 'db.c', undefined, 0));
    expect(first.cursor.firstBatch.length + rest.cursor.nextBatch.length).toBe(20);
  });

  it('applies the projection when a batch is serialised', () => {
    const store = new CursorStore();
    const reply = decode(store.open('db.c', [{ _id: 1, a: 1, b: 2 }], { project: ({ a }) => ({ a }) }, 0));
    expect(reply.cursor.firstBatch).toEqual([{ a: 1 }]);
  });
});
