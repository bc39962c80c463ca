import { Document, Long } from 'bson';
import { runAggregation } from './aggregation';
import { canonicalKey, getField, isPlainObject } from './bson-values';
import { checkCollation, checkHint, CommandArgs } from './command-args';
import { CommandHandler } from './command-types';
import { badValue, ErrorCode, failedToParse, MongoCommandError, unsupported } from './mongo-error';
import { parseSort, sortDocuments } from './document-sort';
import { compileFilter, compileProjection } from './query-engine';

/** find, getMore, killCursors, aggregate, count and distinct. */

const FIND_FIELDS = [
  'filter',
  'sort',
  'projection',
  'hint',
  'skip',
  'limit',
  'batchSize',
  'singleBatch',
  'noCursorTimeout',
  'allowPartialResults',
  'allowDiskUse',
  'collation',
  'readConcern',
  'returnKey',
  'showRecordId',
  'tailable',
  'awaitData',
  'oplogReplay',
];
const FIND_UNSUPPORTED = ['max', 'min', 'let'];

/** Flags accepted only with their default (false) value. */
function rejectTrue(args: CommandArgs, fields: string[]): void {
  for (const field of fields) if (args.boolean(field)) throw unsupported(`the '${field}' option of ${args.name}`);
}

function distinctValues(doc: unknown, parts: string[], out: unknown[]): void {
  if (parts.length === 0) {
    if (Array.isArray(doc)) out.push(...doc);
    else if (doc !== undefined) out.push(doc);
    return;
  }
  if (Array.isArray(doc)) {
    if (/^\d+$/.test(parts[0])) distinctValues(doc[Number(parts[0])], parts.slice(1), out);
    else for (const element of doc) distinctValues(element, parts, out);
    return;
  }
  if (isPlainObject(doc)) distinctValues(getField(doc, parts[0]), parts.slice(1), out);
}

export const readCommands: Record<string, CommandHandler> = {
  find: (command, db, { storage, cursors, now }) => {
    const args = new CommandArgs('find', command).expectOnly(FIND_FIELDS, FIND_UNSUPPORTED);
    rejectTrue(args, ['returnKey', 'showRecordId', 'tailable', 'awaitData']);
    checkCollation(command.collation);
    const name = args.collectionName(db);
    const collection = storage.collection(db, name);
    checkHint(collection, command.hint);
    const filter = compileFilter(args.document('filter'));
    const sort = parseSort(args.document('sort'));
    const project = compileProjection(args.document('projection'), command.filter ?? {});
    const skip = args.integer('skip', { min: 0 }) ?? 0;
    const limit = args.integer('limit', { min: 0 }) || Infinity;
    const batchSize = args.integer('batchSize', { min: 0 });
    const singleBatch = args.boolean('singleBatch') === true;
    let docs: Document[] = [];
    if (collection) {
      docs = collection.find(filter, sort ? Infinity : skip + limit);
      if (sort) sortDocuments(docs, sort);
      if (skip || limit !== Infinity) docs = docs.slice(skip, skip + limit);
    }
    const firstBatch = batchSize === undefined ? undefined : Math.min(batchSize, limit);
    return cursors.open(
      `${db}.${name}`,
      docs,
      { batchSize: firstBatch, singleBatch, project, noTimeout: args.boolean('noCursorTimeout') },
      now(),
    );
  },

  getMore: (command, db, { cursors, now }) => {
    const args = new CommandArgs('getMore', command).expectOnly(['collection', 'batchSize', 'term', 'lastKnownCommittedOpTime']);
    const id = args.long('getMore');
    const collection = args.string('collection');
    if (collection === undefined) throw failedToParse("BSON field 'getMore.collection' is missing but a required field");
    return cursors.getMore(id, `${db}.${collection}`, args.integer('batchSize', { min: 0 }), now());
  },

  killCursors: (command, db, { cursors }) => {
    const args = new CommandArgs('killCursors', command).expectOnly(['cursors']);
    const ids = (args.array('cursors') ?? []).map((id) => {
      if (id instanceof Long) return id;
      if (typeof id === 'number') return Long.fromNumber(id);
      throw new MongoCommandError(ErrorCode.TypeMismatch, "BSON field 'killCursors.cursors' must hold longs");
    });
    // Not validated as a collection name: listCollections cursors live on `$cmd.listCollections`.
    const collection = args.string('killCursors');
    if (!collection) throw failedToParse("BSON field 'killCursors' must name a collection");
    const { killed, notFound } = cursors.kill(`${db}.${collection}`, ids);
    return { cursorsKilled: killed, cursorsNotFound: notFound, cursorsAlive: [], cursorsUnknown: [], ok: 1 };
  },

  aggregate: (command, db, { storage, cursors, now }) => {
    const args = new CommandArgs('aggregate', command).expectOnly(
      ['pipeline', 'cursor', 'allowDiskUse', 'hint', 'collation', 'let', 'bypassDocumentValidation', 'readConcern'],
      ['explain'],
    );
    checkCollation(command.collation);
    if (typeof command.aggregate !== 'string') throw unsupported('database-level aggregation (aggregate: 1)');
    const name = args.collectionName(db);
    const pipeline = args.array('pipeline');
    if (!pipeline) throw failedToParse("BSON field 'aggregate.pipeline' is missing but a required field");
    const cursorSpec = args.document('cursor');
    if (!cursorSpec) {
      throw failedToParse("The 'cursor' option is required, except for aggregate with the explain argument");
    }
    for (const field of Object.keys(cursorSpec)) {
      if (field !== 'batchSize') {
        throw new MongoCommandError(ErrorCode.UnknownField, `BSON field 'aggregate.cursor.${field}' is an unknown field.`);
      }
    }
    const batchSize = new CommandArgs('aggregate.cursor', { cursor: 1, ...cursorSpec }).integer('batchSize', { min: 0 });
    const collection = storage.collection(db, name);
    checkHint(collection, command.hint);
    const results = runAggregation(collection, pipeline, (other) => storage.collection(db, other), {
      variables: args.document('let'),
    });
    return cursors.open(`${db}.${name}`, results, { batchSize }, now());
  },

  count: (command, db, { storage }) => {
    const args = new CommandArgs('count', command).expectOnly(['query', 'limit', 'skip', 'hint', 'collation', 'readConcern', 'fields']);
    checkCollation(command.collation);
    const collection = storage.collection(db, args.collectionName(db));
    checkHint(collection, command.hint);
    const filter = compileFilter(args.document('query'));
    const skip = args.integer('skip', { min: 0 }) ?? 0;
    const limit = Math.abs(args.integer('limit') ?? 0) || Infinity;
    const matched = collection ? (filter.isEmpty ? collection.size : collection.find(filter, skip + limit).length) : 0;
    return { n: Math.max(0, Math.min(limit, matched - skip)), ok: 1 };
  },

  distinct: (command, db, { storage }) => {
    const args = new CommandArgs('distinct', command).expectOnly(['key', 'query', 'collation', 'hint', 'readConcern']);
    checkCollation(command.collation);
    const key = args.string('key');
    if (key === undefined) throw failedToParse("BSON field 'distinct.key' is missing but a required field");
    if (key.length === 0) throw badValue('FieldPath cannot be constructed with empty string');
    const collection = storage.collection(db, args.collectionName(db));
    checkHint(collection, command.hint);
    const filter = compileFilter(args.document('query'));
    const seen = new Map<string, unknown>();
    const parts = key.split('.');
    for (const doc of collection ? collection.find(filter) : []) {
      const values: unknown[] = [];
      distinctValues(doc, parts, values);
      for (const value of values) {
        const canonical = canonicalKey(value);
        if (!seen.has(canonical)) seen.set(canonical, value);
      }
    }
    return { values: [...seen.values()], ok: 1 };
  },
};
