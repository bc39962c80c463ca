import { Decimal128, Document, Double, Long } from 'bson';
import { MongoCommandError } from './mongo-error';
import { compileUpdate } from './update-engine';

const now = new Date('2026-11-23T10:00:00Z');

function apply(doc: Document, update: unknown, options: { filter?: Document; arrayFilters?: unknown; isInsert?: boolean } = {}) {
  return compileUpdate(update, { filter: options.filter ?? {}, arrayFilters: options.arrayFilters }).apply(doc, {
    isInsert: options.isInsert ?? false,
    now,
  });
}

function errorCode(run: () => unknown): number | undefined {
  try {
    run();
  } catch (error) {
    if (error instanceof MongoCommandError) return error.code;
    throw error;
  }
  return undefined;
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object') {
    Object.values(value).forEach(deepFreeze);
    Object.freeze(value);
  }
  return value;
}

describe(compileUpdate.name, () => {
  it('never modifies the stored document (copy-on-write)', () => {
    const original = deepFreeze({ _id: 1, a: { b: 1, c: [1, 2] }, keep: { x: 1 } });
    const { doc, modified } = apply(original, { $inc: { 'a.b': 1 }, $push: { 'a.c': 3 }, $set: { 'n.m': true } });
    expect(modified).toBe(true);
    expect(doc).toEqual({ _id: 1, a: { b: 2, c: [1, 2, 3] }, keep: { x: 1 }, n: { m: true } });
    expect(doc.keep).toBe(original.keep);
    expect(original).toEqual({ _id: 1, a: { b: 1, c: [1, 2] }, keep: { x: 1 } });
  });

  it('reports no modification when values are already equal', () => {
    expect(apply({ _id: 1, a: 5 }, { $set: { a: 5 } }).modified).toBe(false);
    expect(apply({ _id: 1, a: 5 }, { $set: { a: new Double(5) } }).modified).toBe(true);
    expect(apply({ _id: 1 }, { $unset: { missing: '' } }).modified).toBe(false);
  });

  describe('$push', () => {
    it('applies $each and $slice to a missing array (mingo ignores them there)', () => {
      expect(apply({ _id: 1 }, { $push: { s: { $each: [1, 2, 3], $slice: -2 } } }).doc).toEqual({ _id: 1, s: [2, 3] });
      expect(apply({ _id: 1 }, { $push: { s: { $each: [] } } }).doc).toEqual({ _id: 1, s: [] });
    });

    it('applies $position, $sort and $slice in mongod order', () => {
      const doc = { _id: 1, s: [{ n: 3 }, { n: 1 }] };
      expect(apply(doc, { $push: { s: { $each: [{ n: 2 }], $sort: { n: -1 }, $slice: 2 } } }).doc.s).toEqual([{ n: 3 }, { n: 2 }]);
      expect(apply({ _id: 1, s: [1, 2] }, { $push: { s: { $each: [9], $position: 0 } } }).doc.s).toEqual([9, 1, 2]);
    });

    it('fails on a non-array field and on unknown modifiers', () => {
      expect(errorCode(() => apply({ _id: 1, s: 5 }, { $push: { s: 1 } }))).toBe(2);
      expect(errorCode(() => apply({ _id: 1 }, { $push: { s: { $each: [1], $frob: 1 } } }))).toBe(2);
      expect(errorCode(() => apply({ _id: 1 }, { $push: { s: { $each: 1 } } }))).toBe(2);
    });
  });

  it('applies $setOnInsert only when inserting', () => {
    const update = { $setOnInsert: { created: true }, $inc: { n: 1 } };
    expect(apply({ _id: 1, n: 1 }, update).doc).toEqual({ _id: 1, n: 2 });
    expect(apply({ userId: 'u' }, update, { isInsert: true }).doc).toEqual({ userId: 'u', created: true, n: 1 });
  });

  it('creates nested objects for dotted paths, including date-like keys', () => {
    const { doc } = apply({ _id: 1 }, { $inc: { 'daily.2026-11-23.tokens': 5, 'daily.2026-11-23.calls': 1 } });
    expect(doc).toEqual({ _id: 1, daily: { '2026-11-23': { calls: 1, tokens: 5 } } });
    expect(apply({ _id: 1, a: [1] }, { $set: { 'a.3': 4 } }).doc.a).toEqual([1, null, null, 4]);
    expect(errorCode(() => apply({ _id: 1, a: 5 }, { $set: { 'a.b': 1 } }))).toBe(28);
    expect(errorCode(() => apply({ _id: 1, a: [1] }, { $set: { 'a.b': 1 } }))).toBe(28);
  });

  describe('numeric types', () => {
    it('widens int32 overflow to int64 and keeps int64 as int64', () => {
      const widened = apply({ _id: 1, n: 2147483647 }, { $inc: { n: 1 } }).doc.n;
      expect(widened).toBeInstanceOf(Long);
      expect(widened.toString()).toBe('2147483648');
      expect(apply({ _id: 1, n: Long.fromNumber(5) }, { $inc: { n: 1 } }).doc.n).toEqual(Long.fromNumber(6));
      expect(errorCode(() => apply({ _id: 1, n: Long.MAX_VALUE }, { $inc: { n: 1 } }))).toBe(2);
    });

    it('makes any operation with a double a double', () => {
      expect(apply({ _id: 1, n: 1 }, { $inc: { n: 0.5 } }).doc.n).toBe(1.5);
      const integral = apply({ _id: 1, n: 0.5 }, { $inc: { n: 0.5 } }).doc.n;
      expect(integral).toBeInstanceOf(Double);
      expect(integral.value).toBe(1);
      expect(apply({ _id: 1 }, { $mul: { n: 2 } }).doc.n).toBe(0);
      expect(apply({ _id: 1, n: 3 }, { $mul: { n: 2 } }).doc.n).toBe(6);
    });

    it('rejects non-numeric operands and targets with TypeMismatch, decimals as unsupported', () => {
      expect(errorCode(() => apply({ _id: 1, n: 'x' }, { $inc: { n: 1 } }))).toBe(14);
      expect(errorCode(() => apply({ _id: 1 }, { $inc: { n: 'x' } }))).toBe(14);
      expect(errorCode(() => apply({ _id: 1, n: Decimal128.fromString('1') }, { $inc: { n: 1 } }))).toBe(2);
    });
  });

  it('rejects conflicting paths with code 40, across operators too', () => {
    expect(errorCode(() => apply({ _id: 1 }, { $set: { a: 1 }, $inc: { a: 1 } }))).toBe(40);
    expect(errorCode(() => apply({ _id: 1 }, { $set: { 'a.b': 1 }, $setOnInsert: { a: 1 } }))).toBe(40);
    expect(errorCode(() => apply({ _id: 1 }, { $rename: { a: 'b' }, $set: { b: 1 } }))).toBe(40);
    expect(errorCode(() => apply({ _id: 1 }, { $set: { ab: 1, a: 1 } }))).toBeUndefined();
  });

  it('refuses to change _id (66) but allows setting it to the same value', () => {
    expect(errorCode(() => apply({ _id: 1 }, { $set: { _id: 2 } }))).toBe(66);
    expect(errorCode(() => apply({ _id: 1 }, { $unset: { _id: '' } }))).toBe(66);
    expect(apply({ _id: 1 }, { $set: { _id: 1 } }).modified).toBe(false);
    expect(errorCode(() => apply({ _id: 1 }, { _id: 2, a: 1 }))).toBe(66);
  });

  it('treats field names found on Object.prototype as ordinary missing fields', () => {
    expect(apply({ _id: 1 }, { $inc: { constructor: 1 } }).doc).toEqual({ _id: 1, constructor: 1 });
    expect(apply({ _id: 1 }, { $unset: { toString: '' } }).modified).toBe(false);
    expect(apply({ _id: 1 }, { $set: { 'hasOwnProperty.x': 1 } }).doc).toEqual({ _id: 1, hasOwnProperty: { x: 1 } });
  });

  it('rejects malformed updates like mongod', () => {
    expect(errorCode(() => apply({ _id: 1 }, { $frob: { a: 1 } }))).toBe(9);
    expect(errorCode(() => apply({ _id: 1 }, { $set: 5 }))).toBe(9);
    expect(errorCode(() => apply({ _id: 1 }, { $set: { 'a..b': 1 } }))).toBe(56);
    expect(errorCode(() => apply({ _id: 1 }, { $set: { $bad: 1 } }))).toBe(52);
    expect(errorCode(() => apply({ _id: 1 }, { $pop: { a: 2 } }))).toBe(9);
  });

  it('resolves the positional $ from the query and $[id] from arrayFilters', () => {
    const doc = { _id: 1, items: [{ sku: 'a', qty: 1 }, { sku: 'b', qty: 2 }, { sku: 'c', qty: 3 }] };
    const positional = apply(doc, { $inc: { 'items.$.qty': 10 } }, { filter: { 'items.sku': 'b' } }).doc;
    expect(positional.items.map((i: Document) => i.qty)).toEqual([1, 12, 3]);
    const filtered = apply(doc, { $set: { 'items.$[big].flag': true } }, { arrayFilters: [{ 'big.qty': { $gte: 2 } }] }).doc;
    expect(filtered.items.map((i: Document) => i.flag ?? false)).toEqual([false, true, true]);
    expect(apply(doc, { $inc: { 'items.$[].qty': 1 } }).doc.items.map((i: Document) => i.qty)).toEqual([2, 3, 4]);
    expect(errorCode(() => apply(doc, { $set: { 'items.$[x].a': 1 } }))).toBe(2);
    expect(errorCode(() => apply(doc, { $set: { a: 1 } }, { arrayFilters: [{ x: 1 }] }))).toBe(9);
    expect(errorCode(() => apply(doc, { $set: { 'items.$.a': 1 } }, { filter: { other: 1 } }))).toBe(2);
  });

  it('implements the array and field operators', () => {
    const doc = { _id: 1, tags: ['a', 'b'], scores: [1, 5, 8], n: 5, old: 'x', list: [{ k: 1 }, { k: 2 }] };
    expect(apply(doc, { $addToSet: { tags: { $each: ['b', 'c'] } } }).doc.tags).toEqual(['a', 'b', 'c']);
    expect(apply(doc, { $pull: { scores: { $gte: 5 } } }).doc.scores).toEqual([1]);
    expect(apply(doc, { $pull: { list: { k: 2 } } }).doc.list).toEqual([{ k: 1 }]);
    expect(apply(doc, { $pullAll: { tags: ['a'] } }).doc.tags).toEqual(['b']);
    expect(apply(doc, { $pop: { scores: -1 } }).doc.scores).toEqual([5, 8]);
    expect(apply(doc, { $min: { n: 3 }, $max: { m: 1 } }).doc).toMatchObject({ n: 3, m: 1 });
    expect(apply(doc, { $rename: { old: 'renamed' } }).doc).toMatchObject({ renamed: 'x' });
    expect(apply(doc, { $currentDate: { at: true } }).doc.at).toEqual(now);
    expect(apply(doc, { $bit: { n: { and: 4 } } }).doc.n).toBe(4);
    expect(apply(doc, { $unset: { 'tags.0': '' } }).doc.tags).toEqual([null, 'b']);
  });

  it('replaces documents keeping _id first, and runs pipeline updates', () => {
    expect(apply({ _id: 1, a: 1 }, { b: 2 }).doc).toEqual({ _id: 1, b: 2 });
    const { doc } = apply({ _id: 1, a: 2 }, [{ $set: { b: { $multiply: ['$a', 10] } } }, { $unset: 'a' }]);
    expect(doc).toEqual({ _id: 1, b: 20 });
    expect(errorCode(() => apply({ _id: 1 }, [{ $out: 'x' }]))).toBe(2);
  });
});
