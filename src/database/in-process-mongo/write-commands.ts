import { Document, ObjectId } from 'bson';
import { isPlainObject } from './bson-values';
import { checkCollation, checkHint, CommandArgs } from './command-args';
import { CommandContext, CommandHandler } from './command-types';
import { MAX_WRITE_BATCH_SIZE } from './handshake-commands';
import { MemoryCollection } from './memory-collection';
import { ErrorCode, failedToParse, MongoCommandError } from './mongo-error';
import { parseSort, sortDocuments } from './document-sort';
import { CompiledFilter, compileFilter, compileProjection, upsertSeed } from './query-engine';
import { compileUpdate, CompiledUpdate } from './update-engine';

/** insert, update, delete and findAndModify. Each statement is applied atomically. */

function statements(args: CommandArgs, field: string): unknown[] {
  const list = args.array(field);
  if (!list) throw failedToParse(`BSON field '${args.name}.${field}' is missing but a required field`);
  if (list.length === 0 || list.length > MAX_WRITE_BATCH_SIZE) {
    throw new MongoCommandError(16, `Write batch sizes must be between 1 and ${MAX_WRITE_BATCH_SIZE}. Got ${list.length} operations.`);
  }
  return list;
}

function statementArgs(
  args: CommandArgs,
  field: string,
  statement: unknown,
  fields: { required: string[]; optional: string[]; unsupported?: string[] },
) {
  if (!isPlainObject(statement)) {
    throw new MongoCommandError(ErrorCode.TypeMismatch, `BSON field '${args.name}.${field}' must hold objects`);
  }
  for (const name of fields.required) {
    if (statement[name] === undefined) {
      throw new MongoCommandError(40414, `BSON field '${args.name}.${field}.${name}' is missing but a required field`);
    }
  }
  return new CommandArgs(`${args.name}.${field}`, { statement: 1, ...statement }).expectOnly(
    [...fields.required, ...fields.optional],
    fields.unsupported,
  );
}

/** Runs statements in order, collecting per-statement errors like mongod's write commands. */
function runBatch(list: unknown[], ordered: boolean, run: (statement: unknown, index: number) => void): Document[] {
  const writeErrors: Document[] = [];
  for (let i = 0; i < list.length; i++) {
    try {
      run(list[i], i);
    } catch (error) {
      if (!(error instanceof MongoCommandError)) throw error;
      writeErrors.push(error.toWriteError(i));
      if (ordered) break;
    }
  }
  return writeErrors;
}

const withWriteErrors = (reply: Document, writeErrors: Document[]) =>
  writeErrors.length ? { ...reply, writeErrors, ok: 1 } : { ...reply, ok: 1 };

/** The new document of an upsert: the query's equality fields plus the update. */
function upsertDocument(update: CompiledUpdate, filter: Document, now: number): { doc: Document; exotic: boolean } {
  const seed = upsertSeed(filter);
  if (update.kind === 'replacement') {
    const { doc, exotic } = update.apply('_id' in seed ? { _id: seed._id } : {}, { isInsert: true, now: new Date(now) });
    return { doc, exotic };
  }
  const { doc, exotic } = update.apply(seed, { isInsert: true, now: new Date(now) });
  return { doc: '_id' in doc ? doc : { _id: new ObjectId(), ...doc }, exotic };
}

interface Selection {
  collection: MemoryCollection | undefined;
  filter: CompiledFilter;
}

function select(context: CommandContext, db: string, name: string, query: unknown): Selection {
  if (query !== undefined && query !== null && !isPlainObject(query)) {
    throw new MongoCommandError(ErrorCode.TypeMismatch, 'query must be an object');
  }
  return { collection: context.storage.collection(db, name), filter: compileFilter((query ?? {}) as Document) };
}

export const writeCommands: Record<string, CommandHandler> = {
  insert: (command, db, context) => {
    const args = new CommandArgs('insert', command).expectOnly(['documents', 'ordered', 'bypassDocumentValidation']);
    const name = args.collectionName(db);
    const docs = statements(args, 'documents');
    const ordered = args.boolean('ordered') ?? true;
    const { collection } = context.storage.collectionForWrite(db, name);
    let n = 0;
    const writeErrors = runBatch(docs, ordered, (doc) => {
      if (!isPlainObject(doc)) throw new MongoCommandError(ErrorCode.TypeMismatch, 'documents must be objects');
      collection.insert(doc);
      n++;
    });
    return withWriteErrors({ n }, writeErrors);
  },

  update: (command, db, context) => {
    const args = new CommandArgs('update', command).expectOnly(['updates', 'ordered', 'bypassDocumentValidation'], ['let']);
    const name = args.collectionName(db);
    const list = statements(args, 'updates');
    const ordered = args.boolean('ordered') ?? true;
    let n = 0;
    let nModified = 0;
    const upserted: Document[] = [];
    const writeErrors = runBatch(list, ordered, (raw, index) => {
      const statement = statementArgs(args, 'updates', raw, {
        required: ['q', 'u'],
        optional: ['upsert', 'multi', 'arrayFilters', 'hint', 'collation'],
        unsupported: ['c'],
      });
      checkCollation(statement.command.collation);
      const { collection, filter } = select(context, db, name, statement.command.q);
      checkHint(collection, statement.command.hint);
      const multi = statement.boolean('multi') === true;
      const update = compileUpdate(statement.command.u, { arrayFilters: statement.command.arrayFilters, filter: filter.filter });
      if (multi && update.kind === 'replacement') {
        throw failedToParse('multi update is not supported for replacement-style update');
      }
      const matches = collection ? collection.find(filter, multi ? Infinity : 1) : [];
      if (matches.length === 0 && statement.boolean('upsert')) {
        const { doc, exotic } = upsertDocument(update, filter.filter, context.now());
        const target = context.storage.collectionForWrite(db, name).collection;
        const stored = target.insert(doc, exotic);
        upserted.push({ index, _id: stored._id });
        n++;
        return;
      }
      for (const doc of matches) {
        const outcome = update.apply(doc, { isInsert: false, now: new Date(context.now()) });
        n++;
        if (!outcome.modified) continue;
        collection!.replace(doc, outcome.doc, outcome.exotic);
        nModified++;
      }
    });
    return withWriteErrors({ n, nModified, ...(upserted.length ? { upserted } : {}) }, writeErrors);
  },

  delete: (command, db, context) => {
    const args = new CommandArgs('delete', command).expectOnly(['deletes', 'ordered'], ['let']);
    const name = args.collectionName(db);
    const list = statements(args, 'deletes');
    const ordered = args.boolean('ordered') ?? true;
    let n = 0;
    const writeErrors = runBatch(list, ordered, (raw) => {
      const statement = statementArgs(args, 'deletes', raw, { required: ['q', 'limit'], optional: ['hint', 'collation'] });
      checkCollation(statement.command.collation);
      const limit = statement.integer('limit');
      if (limit !== 0 && limit !== 1) {
        throw failedToParse(`The limit field in delete objects must be 0 or 1. Got ${limit ?? 'nothing'}`);
      }
      const { collection, filter } = select(context, db, name, statement.command.q);
      checkHint(collection, statement.command.hint);
      if (!collection) return;
      for (const doc of collection.find(filter, limit === 1 ? 1 : Infinity)) {
        collection.delete(doc);
        n++;
      }
    });
    return withWriteErrors({ n }, writeErrors);
  },

  findAndModify: (command, db, context) => {
    const args = new CommandArgs('findAndModify', command).expectOnly(
      ['query', 'sort', 'remove', 'update', 'new', 'fields', 'upsert', 'bypassDocumentValidation', 'collation', 'arrayFilters', 'hint'],
      ['let'],
    );
    checkCollation(command.collation);
    const name = args.collectionName(db);
    const remove = args.boolean('remove') === true;
    const returnNew = args.boolean('new') === true;
    const upsert = args.boolean('upsert') === true;
    if (remove && args.has('update')) throw failedToParse('Cannot specify both an update and remove=true');
    if (!remove && !args.has('update')) throw failedToParse('Either an update or remove=true must be specified');
    if (remove && returnNew) {
      throw failedToParse("Cannot specify both new=true and remove=true; 'remove' always returns the deleted document");
    }
    if (remove && upsert) throw failedToParse('Cannot specify both upsert=true and remove=true');
    if (remove && args.has('arrayFilters')) throw failedToParse('Cannot specify arrayFilters and remove=true');
    const { collection, filter } = select(context, db, name, command.query);
    checkHint(collection, command.hint);
    const sort = parseSort(args.document('sort'));
    const project = compileProjection(args.document('fields'), filter.filter);
    const shown = (doc: Document | null) => (doc && project ? project(doc) : doc);
    const update = remove
      ? undefined
      : compileUpdate(command.update, { arrayFilters: command.arrayFilters, filter: filter.filter });

    let target: Document | undefined;
    if (collection) {
      const matches = collection.find(filter, sort ? Infinity : 1);
      target = (sort ? sortDocuments(matches, sort) : matches)[0];
    }

    if (remove) {
      if (target) collection!.delete(target);
      return { lastErrorObject: { n: target ? 1 : 0 }, value: shown(target ?? null), ok: 1 };
    }
    if (!target) {
      if (!upsert) return { lastErrorObject: { n: 0, updatedExisting: false }, value: null, ok: 1 };
      const { doc, exotic } = upsertDocument(update!, filter.filter, context.now());
      const stored = context.storage.collectionForWrite(db, name).collection.insert(doc, exotic);
      return {
        lastErrorObject: { n: 1, updatedExisting: false, upserted: stored._id },
        value: returnNew ? shown(stored) : null,
        ok: 1,
      };
    }
    const outcome = update!.apply(target, { isInsert: false, now: new Date(context.now()) });
    if (outcome.modified) collection!.replace(target, outcome.doc, outcome.exotic);
    return {
      lastErrorObject: { n: 1, updatedExisting: true },
      value: shown(returnNew ? outcome.doc : target),
      ok: 1,
    };
  },
};
