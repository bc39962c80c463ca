import { Document } from 'bson';
import { Aggregator } from 'mingo/aggregator';
import { canonicalKey, cloneDeep, compareBson, hasField, isPlainObject } from './bson-values';
import { MemoryCollection } from './memory-collection';
import { mingoOptions, SUPPORTED_STAGES, withMingo } from './mingo-context';
import { badValue, MongoCommandError, unsupported } from './mongo-error';
import { compileFilter } from './query-engine';

/** Stages mingo executes without modifying its input documents. */
const NON_MUTATING_STAGES = new Set([
  '$match',
  '$group',
  '$sort',
  '$limit',
  '$skip',
  '$count',
  '$sortByCount',
  '$bucket',
  '$bucketAuto',
  '$facet',
  '$sample',
  '$replaceRoot',
  '$replaceWith',
]);

/** Every stage name mongod 7 knows; others are unrecognized there too. */
const MONGODB_STAGES = new Set([
  ...SUPPORTED_STAGES,
  '$changeStream',
  '$changeStreamSplitLargeEvent',
  '$collStats',
  '$currentOp',
  '$documents',
  '$geoNear',
  '$indexStats',
  '$listLocalSessions',
  '$listSampledQueries',
  '$listSearchIndexes',
  '$listSessions',
  '$merge',
  '$out',
  '$planCacheStats',
  '$querySettings',
  '$queryStats',
  '$search',
  '$searchMeta',
  '$shardedDataDistribution',
  '$vectorSearch',
]);

const SUB_PIPELINE_STAGES = new Set(['$facet', '$lookup', '$unionWith']);

function validateStages(pipeline: unknown[], nested: boolean): void {
  for (const stage of pipeline) {
    if (!isPlainObject(stage) || Object.keys(stage).length !== 1) {
      throw new MongoCommandError(40323, 'A pipeline stage specification object must contain exactly one field.');
    }
    const name = Object.keys(stage)[0];
    if (!MONGODB_STAGES.has(name)) {
      throw new MongoCommandError(40324, `Unrecognized pipeline stage name: '${name}'`);
    }
    if (!SUPPORTED_STAGES.has(name)) throw unsupported(`the aggregation stage ${name}`);
    if (nested && name === '$facet') throw badValue('$facet is not allowed to be used within a $facet stage');
    const spec = stage[name];
    if (name === '$facet' && isPlainObject(spec)) {
      for (const sub of Object.values(spec)) if (Array.isArray(sub)) validateStages(sub, true);
    }
    if ((name === '$lookup' || name === '$unionWith') && isPlainObject(spec) && Array.isArray(spec.pipeline)) {
      validateStages(spec.pipeline, true);
    }
    if (SUB_PIPELINE_STAGES.has(name) && !isPlainObject(spec) && !(name === '$unionWith' && typeof spec === 'string')) {
      throw badValue(`${name} requires a document argument`);
    }
  }
}

export interface AggregationOptions {
  variables?: Document;
}

/**
 * Runs a pipeline over a collection with mingo. A leading `$match` is answered by the
 * collection (so it can use an index); stages that do not modify their input run on
 * the stored documents' query views directly, and the documents reaching the first
 * stage that might modify its input are deep-copied first.
 */
export function runAggregation(
  collection: MemoryCollection | undefined,
  pipeline: unknown[],
  resolveCollection: (name: string) => MemoryCollection | undefined,
  options: AggregationOptions = {},
): Document[] {
  validateStages(pipeline, false);
  const stages = pipeline as Document[];
  if (!collection) return stages.length && '$documents' in stages[0] ? [] : runStages([], stages, resolveCollection, options);
  let input: Document[];
  let rest = stages;
  if (stages.length && '$match' in stages[0]) {
    const filter = compileFilter(stages[0].$match, '$match');
    input = collection.find(filter).map((doc) => collection.queryView(doc));
    rest = stages.slice(1);
  } else {
    input = [];
    for (const doc of collection.all()) input.push(collection.queryView(doc));
  }
  return runStages(input, rest, resolveCollection, options);
}

type Accumulator = {
  add(doc: Document): void;
  result(): unknown;
};
type AccumulatorFactory = () => Accumulator;

const MISSING = Symbol('missing');

/** A `$a.b` field path resolved without traversing arrays, or undefined when it would. */
function fieldPathReader(expression: unknown): ((doc: Document) => unknown) | undefined {
  if (typeof expression !== 'string' || !expression.startsWith('$') || expression.startsWith('$$')) return undefined;
  const parts = expression.slice(1).split('.');
  if (parts.some((part) => part === '' || part in Object.prototype)) return undefined;
  const [first, ...rest] = parts;
  return (doc) => {
    let value: unknown = doc[first];
    if (value === undefined) return MISSING;
    for (const part of rest) {
      if (Array.isArray(value)) throw NEEDS_MINGO;
      if (!isPlainObject(value) || !hasField(value, part)) return MISSING;
      value = value[part];
    }
    return value;
  };
}

const NEEDS_MINGO = new Error('stage needs mingo');
const isConstant = (value: unknown) => value === null || ['number', 'string', 'boolean'].includes(typeof value);

function valueReader(expression: unknown): ((doc: Document) => unknown) | undefined {
  if (isConstant(expression) && !(typeof expression === 'string' && expression.startsWith('$'))) return () => expression;
  return fieldPathReader(expression);
}

function accumulatorFactory(spec: unknown): AccumulatorFactory | undefined {
  if (!isPlainObject(spec) || Object.keys(spec).length !== 1) return undefined;
  const [op] = Object.keys(spec);
  const argument = spec[op];
  if (op === '$count') {
    if (!isPlainObject(argument) || Object.keys(argument).length) return undefined;
    return () => {
      let n = 0;
      return { add: () => n++, result: () => n };
    };
  }
  const read = valueReader(argument);
  if (!read) return undefined;
  switch (op) {
    case '$sum':
    case '$avg':
      return () => {
        let total = 0;
        let n = 0;
        return {
          add: (doc) => {
            const value = read(doc);
            if (typeof value === 'number') {
              total += value;
              n++;
            }
          },
          result: () => (op === '$sum' ? total : n ? total / n : null),
        };
      };
    case '$min':
    case '$max':
      return () => {
        let best: unknown = MISSING;
        return {
          add: (doc) => {
            const value = read(doc);
            if (value === MISSING || value === null || value === undefined) return;
            const order = best === MISSING ? 0 : compareBson(value, best);
            if (best === MISSING || (op === '$min' ? order < 0 : order > 0)) best = value;
          },
          result: () => (best === MISSING ? null : best),
        };
      };
    case '$first':
    case '$last':
      return () => {
        let chosen: unknown = MISSING;
        let seen = false;
        return {
          add: (doc) => {
            if (op === '$first' && seen) return;
            seen = true;
            chosen = read(doc);
          },
          result: () => (chosen === MISSING ? null : chosen),
        };
      };
    case '$push':
    case '$addToSet':
      return () => {
        const values: unknown[] = [];
        const keys = new Set<string>();
        return {
          add: (doc) => {
            const value = read(doc);
            if (value === MISSING) return;
            if (op === '$addToSet') {
              const key = canonicalKey(value);
              if (keys.has(key)) return;
              keys.add(key);
            }
            values.push(value);
          },
          result: () => values,
        };
      };
  }
  return undefined;
}

/**
 * `$group` with field-path or constant keys and the common accumulators, computed
 * natively (mingo's $group hashes every key and costs ~5-10 us per document).
 * Returns undefined for anything else, which then runs in mingo.
 */
function nativeGroup(spec: unknown): ((docs: Document[]) => Document[]) | undefined {
  if (!isPlainObject(spec) || !('_id' in spec)) return undefined;
  let readId: ((doc: Document) => unknown) | undefined;
  const idSpec = spec._id;
  if (isPlainObject(idSpec)) {
    const fields = Object.keys(idSpec);
    if (fields.some((field) => field.startsWith('$'))) return undefined;
    const readers = fields.map((field) => valueReader(idSpec[field]));
    if (readers.some((reader) => !reader)) return undefined;
    readId = (doc) => {
      const id: Document = {};
      fields.forEach((field, i) => {
        const value = readers[i]!(doc);
        if (value !== MISSING) id[field] = value;
      });
      return id;
    };
  } else {
    const reader = valueReader(idSpec);
    if (!reader) return undefined;
    readId = (doc) => {
      const value = reader(doc);
      return value === MISSING ? null : value;
    };
  }
  const outputs = Object.keys(spec).filter((field) => field !== '_id');
  const factories = outputs.map((field) => (field.includes('.') ? undefined : accumulatorFactory(spec[field])));
  if (factories.some((factory) => !factory)) return undefined;
  return (docs) => {
    const groups = new Map<string | number, { id: unknown; accumulators: Accumulator[] }>();
    for (const doc of docs) {
      const id = readId!(doc);
      // Numbers key the map directly (SameValueZero); everything else by canonical key.
      const key = typeof id === 'number' ? id : canonicalKey(id);
      let group = groups.get(key);
      if (!group) groups.set(key, (group = { id, accumulators: factories.map((factory) => factory!()) }));
      for (const accumulator of group.accumulators) accumulator.add(doc);
    }
    return [...groups.values()].map(({ id, accumulators }) => {
      const result: Document = { _id: id };
      outputs.forEach((field, i) => (result[field] = accumulators[i].result()));
      return result;
    });
  };
}

function runStages(
  input: Document[],
  stages: Document[],
  resolveCollection: (name: string) => MemoryCollection | undefined,
  options: AggregationOptions,
): Document[] {
  const opts = mingoOptions({
    variables: options.variables,
    collectionResolver: (name: string) => {
      const other = resolveCollection(name);
      if (!other) return [];
      return [...other.all()].map((doc) => cloneDeep(other.queryView(doc)));
    },
  });
  let docs = input;
  // Whether `docs` are private copies that mingo's mutating stages may edit.
  let owned = false;
  let segment: Document[] = [];
  const runSegment = () => {
    if (segment.length === 0) return;
    const firstMutating = owned ? -1 : segment.findIndex((stage) => !NON_MUTATING_STAGES.has(Object.keys(stage)[0]));
    const safe = firstMutating === -1 ? segment : segment.slice(0, firstMutating);
    const unsafe = firstMutating === -1 ? [] : segment.slice(firstMutating);
    docs = withMingo('aggregate', () => {
      let result = safe.length ? (new Aggregator(safe, opts).run(docs) as Document[]) : docs;
      if (unsafe.length) {
        result = new Aggregator(unsafe, opts).run(result.map(cloneDeep)) as Document[];
        owned = true;
      }
      return result;
    });
    segment = [];
  };
  for (const stage of stages) {
    const group = '$group' in stage ? nativeGroup(stage.$group) : undefined;
    if (!group) {
      segment.push(stage);
      continue;
    }
    runSegment();
    try {
      docs = group(docs);
    } catch (error) {
      if (error !== NEEDS_MINGO) throw error;
      segment.push(stage);
    }
  }
  runSegment();
  return docs;
}
