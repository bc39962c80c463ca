import { Document, Long } from 'bson';
import { MemoryCollection } from './memory-collection';
import { MongoCommandError } from './mongo-error';
import { compileFilter } from './query-engine';

function errorOf(run: () => unknown): MongoCommandError | undefined {
  try {
    run();
  } catch (error) {
    if (error instanceof MongoCommandError) return error;
    throw error;
  }
  return undefined;
}

const count = (iterable: Iterable<Document>) => [...iterable].length;

describe(MemoryCollection.name, () => {
  let collection: MemoryCollection;

  beforeEach(() => {
    collection = new MemoryCollection('db', 'coll');
  });

  it('answers equality on an indexed first field (and on _id) from the index', () => {
    collection.createIndex({ v: 2, key: { userId: 1, day: 1 }, name: 'userId_1_day_1' });
    for (let i = 0; i < 1_000; i++) collection.insert({ _id: i, userId: `u${i % 100}`, day: i });
    expect(count(collection.candidates({ userId: 'u7' }))).toBe(10);
    expect(count(collection.candidates({ userId: { $in: ['u7', 'u8'] }, day: { $gt: 3 } }))).toBe(20);
    expect(count(collection.candidates({ _id: 42 }))).toBe(1);
    expect(count(collection.candidates({ $and: [{ userId: 'u1' }] }))).toBe(10);
    expect(count(collection.candidates({ day: 5 }))).toBe(1_000);
    expect(collection.find(compileFilter({ userId: 'u7', day: { $gte: 500 } }))).toHaveLength(5);
  });

  it('treats numerically equal values of different BSON types as one key', () => {
    collection.createIndex({ v: 2, key: { n: 1 }, name: 'n_1', unique: true });
    collection.insert({ _id: 1, n: 5 });
    expect(errorOf(() => collection.insert({ _id: 2, n: Long.fromNumber(5) }))?.code).toBe(11000);
    expect(errorOf(() => collection.insert({ _id: 1.0, n: 6 }))?.code).toBe(11000);
    expect(count(collection.candidates({ n: Long.fromNumber(5) }))).toBe(1);
  });

  it('leaves document and indexes unchanged when an update would duplicate a key', () => {
    collection.createIndex({ v: 2, key: { email: 1 }, name: 'email_1', unique: true });
    const a = collection.insert({ _id: 'a', email: 'a@x' });
    collection.insert({ _id: 'b', email: 'b@x' });
    const error = errorOf(() => collection.replace(a, { _id: 'a', email: 'b@x' }, false));
    expect(error?.extra).toEqual({ keyPattern: { email: 1 }, keyValue: { email: 'b@x' } });
    expect(collection.find(compileFilter({ email: 'a@x' }))).toEqual([a]);
    collection.replace(a, { _id: 'a', email: 'c@x' }, false);
    expect(count(collection.candidates({ email: 'a@x' }))).toBe(0);
    expect(count(collection.candidates({ email: 'c@x' }))).toBe(1);
  });

  it('indexes array elements (multikey) and refuses parallel arrays', () => {
    collection.createIndex({ v: 2, key: { tags: 1 }, name: 'tags_1', unique: true });
    collection.insert({ _id: 1, tags: ['a', 'b'] });
    expect(errorOf(() => collection.insert({ _id: 2, tags: ['c', 'b'] }))?.extra.keyValue).toEqual({ tags: 'b' });
    collection.insert({ _id: 3, tags: ['c', 'c'] });
    const compound = new MemoryCollection('db', 'compound');
    compound.createIndex({ v: 2, key: { a: 1, b: 1 }, name: 'a_1_b_1' });
    expect(errorOf(() => compound.insert({ a: [1], b: [2] }))?.code).toBe(171);
  });

  it('lets sparse and partial unique indexes skip documents', () => {
    collection.createIndex({ v: 2, key: { code: 1 }, name: 'code_1', unique: true, sparse: true });
    collection.createIndex({
      v: 2,
      key: { handle: 1 },
      name: 'handle_1',
      unique: true,
      partialFilterExpression: { active: { $eq: true } },
    });
    collection.insert({ _id: 1 });
    collection.insert({ _id: 2 });
    collection.insert({ _id: 3, handle: 'h', active: false });
    collection.insert({ _id: 4, handle: 'h', active: true });
    expect(errorOf(() => collection.insert({ _id: 5, handle: 'h', active: true }))?.code).toBe(11000);
    expect(count(collection.candidates({ code: 'x' }))).toBe(4);
    expect(
      errorOf(() =>
        collection.createIndex({ v: 2, key: { z: 1 }, name: 'z_1', partialFilterExpression: { z: { $ne: 1 } } }),
      )?.code,
    ).toBe(67);
  });

  it('removes documents past their TTL, using the earliest date of an array', () => {
    collection.createIndex({ v: 2, key: { at: 1 }, name: 'at_1', expireAfterSeconds: 60 });
    const now = Date.parse('2026-11-23T12:00:00Z');
    collection.insert({ _id: 'old', at: new Date(now - 61_000) });
    collection.insert({ _id: 'new', at: new Date(now - 59_000) });
    collection.insert({ _id: 'array', at: [new Date(now), new Date(now - 120_000)] });
    collection.insert({ _id: 'string', at: '2000-01-01' });
    expect(collection.removeExpired(now)).toBe(2);
    expect([...collection.all()].map((doc) => doc._id)).toEqual(['new', 'string']);
  });

  it('validates new documents', () => {
    expect(errorOf(() => collection.insert({ _id: [1] }))?.code).toBe(53);
    expect(errorOf(() => collection.insert({ $bad: 1 }))?.code).toBe(2);
    const stored = collection.insert({ a: 1 });
    expect(Object.keys(stored)).toEqual(['_id', 'a']);
  });
});
