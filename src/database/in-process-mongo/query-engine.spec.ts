import { Decimal128, Document, Double, Long, MaxKey, MinKey, ObjectId } from 'bson';
import { canonicalKey, compareBson } from './bson-values';
import { Aggregator } from 'mingo/aggregator';
import { Query } from 'mingo/query';
import { mingoOptions } from './mingo-context';
import { MongoCommandError } from './mongo-error';
import { parseSort, sortDocuments } from './document-sort';
import { compileFilter, compileProjection, upsertSeed } from './query-engine';

function errorCode(run: () => unknown): number | undefined {
  try {
    run();
  } catch (error) {
    if (error instanceof MongoCommandError) return error.code;
    throw error;
  }
  return undefined;
}

const matches = (filter: Document, doc: Document) => compileFilter(filter).test(doc);

describe(compileFilter.name, () => {
  it('matches equality the way MongoDB does, array elements and dotted paths included', () => {
    expect(matches({ a: 2 }, { a: [1, 2] })).toBe(true);
    expect(matches({ 'a.b': 'x' }, { a: [{ b: 'y' }, { b: 'x' }] })).toBe(true);
    expect(matches({ 'a.1': 5 }, { a: [4, 5] })).toBe(true);
    expect(matches({ a: 1 }, { a: [[1]] })).toBe(false);
    const id = new ObjectId();
    expect(matches({ _id: new ObjectId(id.toHexString()) }, { _id: id })).toBe(true);
    expect(matches({ at: new Date(5) }, { at: new Date(5) })).toBe(true);
  });

  it('agrees with mingo on the filters it matches natively', () => {
    const docs: Document[] = [
      {},
      { a: null },
      { a: 1 },
      { a: 2.5 },
      { a: -1 },
      { a: 'b' },
      { a: true },
      { a: new Date(10) },
      { a: [1, 5] },
      { a: [] },
      { a: [[1]] },
      { a: { b: 1 } },
      { a: [{ b: 1 }, { b: 'x' }] },
      { a: { b: [2, 3] } },
      { constructor: 1 },
    ];
    const filters: Document[] = [
      { a: 1 },
      { a: 'b' },
      { a: true },
      { a: new Date(10) },
      { 'a.b': 1 },
      { 'a.b': 3 },
      { 'a.1': 5 },
      { a: { $gt: 1 } },
      { a: { $gte: 1, $lt: 5 } },
      { a: { $lte: 'c' } },
      { a: { $gt: new Date(5) } },
      { a: { $ne: 1 } },
      { a: { $ne: 'b' } },
      { a: { $in: [1, 'b'] } },
      { a: { $nin: [1, 2.5] } },
      { 'a.b': { $gt: 1 } },
      { a: 1, 'a.b': 1 },
      { constructor: 1 },
    ];
    const mingo = (filter: Document, doc: Document) => new Query(filter, mingoOptions()).test(doc);
    // mingo descends into nested arrays for dotted paths; MongoDB does not.
    const mingoQuirk = (filter: Document, doc: Document) => 'a.b' in filter && Array.isArray(doc.a) && Array.isArray(doc.a[0]);
    for (const filter of filters) {
      for (const doc of docs) {
        if (mingoQuirk(filter, doc)) continue;
        expect({ filter, doc, matches: compileFilter(filter).test(doc) }).toEqual({ filter, doc, matches: mingo(filter, doc) });
      }
    }
    expect(compileFilter({ 'a.b': 1 }).test({ a: [[1]] })).toBe(false);
  });

  it('fails loudly on unknown or unsupported operators and bad arguments', () => {
    expect(errorCode(() => compileFilter({ a: { $foo: 1 } }))).toBe(2);
    expect(errorCode(() => compileFilter({ $foo: 1 }))).toBe(2);
    expect(errorCode(() => compileFilter({ $where: 'this.a' }))).toBe(2);
    expect(errorCode(() => compileFilter({ $text: { $search: 'x' } }))).toBe(2);
    expect(errorCode(() => compileFilter({ a: { $in: 1 } }))).toBe(2);
    expect(errorCode(() => compileFilter({ a: { $size: 'x' } }))).toBe(2);
    expect(errorCode(() => compileFilter({ $or: [] }))).toBe(2);
    expect(errorCode(() => compileFilter({ a: { $type: 'long' } }))).toBe(2);
    expect(errorCode(() => compileFilter({ a: { $type: 'nonsense' } }))).toBe(2);
  });

  it('implements $type with BSON aliases, matching array elements', () => {
    expect(matches({ a: { $type: 'int' } }, { a: 5 })).toBe(true);
    expect(matches({ a: { $type: 'double' } }, { a: 5 })).toBe(false);
    expect(matches({ a: { $type: 'double' } }, { a: 5.5 })).toBe(true);
    expect(matches({ a: { $type: 'string' } }, { a: [1, 'x'] })).toBe(true);
    expect(matches({ a: { $type: 'array' } }, { a: [] })).toBe(true);
    expect(matches({ a: { $type: ['null', 'objectId'] } }, { a: new ObjectId() })).toBe(true);
  });

  it('compares int64 and typed doubles numerically through the query view', () => {
    const filter = compileFilter({ n: { $gt: Long.fromNumber(5) } });
    expect(filter.test({ n: 6 })).toBe(true);
    expect(filter.test({ n: 4 })).toBe(false);
    expect(compileFilter({ $comment: 'why', a: 1 }).test({ a: 1 })).toBe(true);
  });
});

describe(canonicalKey.name, () => {
  it('equates numbers across BSON types and nothing else', () => {
    const one = canonicalKey(1);
    expect(canonicalKey(new Double(1))).toBe(one);
    expect(canonicalKey(Long.fromNumber(1))).toBe(one);
    expect(canonicalKey(Decimal128.fromString('1.0'))).toBe(one);
    expect(canonicalKey('1')).not.toBe(one);
    expect(canonicalKey(true)).not.toBe(one);
    expect(canonicalKey({ a: 1, b: 2 })).not.toBe(canonicalKey({ b: 2, a: 1 }));
  });
});

describe(compareBson.name, () => {
  it('orders values across types like MongoDB', () => {
    const values = [new MaxKey(), true, 'a', new Date(0), new ObjectId(), { a: 1 }, [1], 2, null, new MinKey()];
    const sorted = [...values].sort(compareBson).map((v) => (v === null ? 'null' : v.constructor.name));
    expect(sorted).toEqual(['MinKey', 'null', 'Number', 'String', 'Object', 'Array', 'ObjectId', 'Boolean', 'Date', 'MaxKey']);
    expect(compareBson(Long.fromNumber(3), 2.5)).toBe(1);
  });
});

describe(sortDocuments.name, () => {
  it('sorts arrays by their smallest element ascending and largest descending, missing first', () => {
    const docs = [{ _id: 'a', v: [5, 1] }, { _id: 'b', v: 3 }, { _id: 'c' }, { _id: 'd', v: [4, 9] }];
    const ids = (spec: Document) => sortDocuments([...docs], parseSort(spec)!).map((d) => d._id);
    expect(ids({ v: 1 })).toEqual(['c', 'a', 'b', 'd']);
    expect(ids({ v: -1 })).toEqual(['d', 'a', 'b', 'c']);
    expect(errorCode(() => parseSort({ v: 2 }))).toBe(2);
  });
});

describe('aggregation $sort', () => {
  it('uses the same order as find, arrays and cross-type values included', () => {
    const docs = [{ _id: 'a', v: [5, 1] }, { _id: 'b', v: 3 }, { _id: 'c' }, { _id: 'd', v: new ObjectId() }, { _id: 'e', v: true }];
    const sorted = new Aggregator([{ $sort: { v: -1 } }], mingoOptions()).run(docs);
    expect(sorted.map((d) => d._id)).toEqual(['e', 'd', 'a', 'b', 'c']);
  });
});

describe(compileProjection.name, () => {
  const doc = { _id: 1, a: 1, b: { c: 2, d: 3 }, list: [{ x: 1, y: 2 }, { x: 3, y: 4 }] };

  it('includes and excludes fields, dotted and through arrays', () => {
    expect(compileProjection({ a: 1 })!(doc)).toEqual({ _id: 1, a: 1 });
    expect(compileProjection({ 'b.c': 1, _id: 0 })!(doc)).toEqual({ b: { c: 2 } });
    expect(compileProjection({ 'list.x': 1, _id: 0 })!(doc)).toEqual({ list: [{ x: 1 }, { x: 3 }] });
    expect(compileProjection({ b: 0, list: 0 })!(doc)).toEqual({ _id: 1, a: 1 });
    expect(compileProjection({ 'b.d': 0, list: 0, a: 0 })!(doc)).toEqual({ _id: 1, b: { c: 2 } });
    expect(doc.b).toEqual({ c: 2, d: 3 });
  });

  it('supports $slice and rejects mixed inclusion/exclusion', () => {
    expect(compileProjection({ list: { $slice: 1 } })!(doc)).toMatchObject({ list: [{ x: 1, y: 2 }] });
    expect(doc.list).toHaveLength(2);
    // A $slice alone keeps every other field; next to an inclusion only the named fields stay.
    expect(compileProjection({ list: { $slice: -1 } })!(doc)).toEqual({ _id: 1, a: 1, b: { c: 2, d: 3 }, list: [{ x: 3, y: 4 }] });
    expect(compileProjection({ _id: 0, a: 1, list: { $slice: -1 } })!(doc)).toEqual({ a: 1, list: [{ x: 3, y: 4 }] });
    expect(compileProjection({ a: 0, list: { $slice: 0 } })!(doc)).toEqual({ _id: 1, b: { c: 2, d: 3 }, list: [] });
    expect(compileProjection({ list: { $slice: -5 }, b: { $slice: 1 }, a: 1 })!(doc)).toEqual({ _id: 1, a: 1, b: { c: 2, d: 3 }, list: doc.list });
    expect(compileProjection({ _id: 0, missing: { $slice: 2 }, a: 1 })!(doc)).toEqual({ a: 1 });
    expect(compileProjection({ _id: 0, a: 0, b: 0, list: { $slice: [1, 1] } })!(doc)).toEqual({ list: [{ x: 3, y: 4 }] });
    expect(compileProjection({ _id: 0, a: 0, b: 0, list: { $slice: [-1, 5] } })!(doc)).toEqual({ list: [{ x: 3, y: 4 }] });
    expect(compileProjection({ _id: 0, a: 0, b: 0, list: { $slice: [-9, 1] } })!(doc)).toEqual({ list: [{ x: 1, y: 2 }] });
    expect(doc.list).toHaveLength(2);
    expect(errorCode(() => compileProjection({ a: 1, b: 0 }))).toBe(31254);
    expect(errorCode(() => compileProjection({ a: { $meta: 'textScore' } }))).toBe(2);
  });
});

describe(upsertSeed.name, () => {
  it('seeds a new document from the equality conditions of the query', () => {
    expect(upsertSeed({ userId: 'u', 'a.b': 2, n: { $gt: 1 }, m: { $eq: 3 }, $and: [{ k: 'v' }] })).toEqual({
      userId: 'u',
      a: { b: 2 },
      m: 3,
      k: 'v',
    });
    expect(errorCode(() => upsertSeed({ a: 1, 'a.b': 2 }))).toBe(54);
  });
});
