import { Document } from 'bson';
import { canonicalKey, isPlainObject, toNumber } from './bson-values';
import { CommandArgs } from './command-args';
import { CommandHandler } from './command-types';
import { DEFAULT_FIRST_BATCH_SIZE } from './cursor-store';
import { IndexSpec } from './memory-index';
import { ID_INDEX_SPEC, MemoryCollection } from './memory-collection';
import { ErrorCode, MongoCommandError, unsupported } from './mongo-error';
import { compileFilter } from './query-engine';

/** Database, collection and index administration. */

const UNSUPPORTED_CREATE_OPTIONS = [
  'size',
  'max',
  'validator',
  'validationLevel',
  'validationAction',
  'timeseries',
  'expireAfterSeconds',
  'clusteredIndex',
  'collation',
  'viewOn',
  'pipeline',
  'storageEngine',
  'indexOptionDefaults',
  'changeStreamPreAndPostImages',
  'encryptedFields',
  'idIndex',
  'autoIndexId',
  'flags',
  'temp',
  'recordPreImages',
];

const UNSUPPORTED_INDEX_OPTIONS = [
  'collation',
  'hidden',
  'storageEngine',
  'weights',
  'default_language',
  'language_override',
  'textIndexVersion',
  '2dsphereIndexVersion',
  'bits',
  'min',
  'max',
  'bucketSize',
  'wildcardProjection',
  'clustered',
  'prepareUnique',
];
const KNOWN_INDEX_OPTIONS = ['key', 'name', 'unique', 'sparse', 'partialFilterExpression', 'expireAfterSeconds', 'background', 'v', 'ns'];

function cursorOptions(args: CommandArgs): number | undefined {
  const cursor = args.document('cursor');
  if (!cursor) return undefined;
  for (const field of Object.keys(cursor)) {
    if (field !== 'batchSize') {
      throw new MongoCommandError(ErrorCode.UnknownField, `BSON field '${args.name}.cursor.${field}' is an unknown field.`);
    }
  }
  return new CommandArgs(`${args.name}.cursor`, { cursor: 1, ...cursor }).integer('batchSize', { min: 0 });
}

function existingCollection(collection: MemoryCollection | undefined, ns: string): MemoryCollection {
  if (!collection) throw new MongoCommandError(ErrorCode.NamespaceNotFound, `ns does not exist: ${ns}`);
  return collection;
}

function parseIndexSpec(raw: unknown, collectionName: string): IndexSpec {
  if (!isPlainObject(raw)) throw new MongoCommandError(ErrorCode.TypeMismatch, 'index specification must be an object');
  const args = new CommandArgs('createIndexes.indexes', { spec: 1, ...raw });
  args.expectOnly(KNOWN_INDEX_OPTIONS, UNSUPPORTED_INDEX_OPTIONS);
  const key = args.document('key');
  const name = args.string('name');
  if (!key || Object.keys(key).length === 0) {
    throw new MongoCommandError(ErrorCode.CannotCreateIndex, "The 'key' field is a required property of an index specification");
  }
  if (!name) throw new MongoCommandError(ErrorCode.CannotCreateIndex, "The 'name' field is a required property of an index specification");
  for (const field of Object.keys(key)) {
    const direction = key[field];
    if (typeof direction === 'string') throw unsupported(`'${direction}' indexes`);
    if (field.includes('$**')) throw unsupported('wildcard indexes');
    if (typeof direction !== 'number' || direction === 0 || Number.isNaN(direction)) {
      throw new MongoCommandError(ErrorCode.CannotCreateIndex, `Values in the index key pattern can't be 0 or non-numbers: ${field}`);
    }
  }
  const spec: IndexSpec = { v: 2, key, name };
  if (args.boolean('unique')) spec.unique = true;
  if (args.boolean('sparse')) spec.sparse = true;
  const partial = args.document('partialFilterExpression');
  if (partial) spec.partialFilterExpression = partial;
  if (args.has('expireAfterSeconds')) {
    const seconds = toNumber(raw.expireAfterSeconds);
    if (!Number.isFinite(seconds) || seconds < 0) {
      throw new MongoCommandError(ErrorCode.CannotCreateIndex, "TTL index 'expireAfterSeconds' option must be a non-negative number");
    }
    spec.expireAfterSeconds = Math.floor(seconds);
  }
  if (name === ID_INDEX_SPEC.name && canonicalKey(key) !== canonicalKey(ID_INDEX_SPEC.key)) {
    throw new MongoCommandError(ErrorCode.BadValue, `The index name '_id_' is reserved for the _id index (${collectionName})`);
  }
  return spec;
}

const optionsOf = (spec: IndexSpec) =>
  canonicalKey([spec.unique ?? false, spec.sparse ?? false, spec.partialFilterExpression ?? null, spec.expireAfterSeconds ?? null]);

/** Whether the index already exists exactly, or an error when it clashes with an existing one. */
function findEquivalent(collection: MemoryCollection, spec: IndexSpec): boolean {
  const sameName = collection.findIndex(spec.name);
  if (sameName) {
    if (canonicalKey(sameName.key) !== canonicalKey(spec.key)) {
      throw new MongoCommandError(
        ErrorCode.IndexKeySpecsConflict,
        `An existing index has the same name as the requested index. Requested index: ${JSON.stringify(spec)}, existing index: ${JSON.stringify(sameName)}`,
      );
    }
    if (optionsOf(sameName) !== optionsOf(spec)) {
      throw new MongoCommandError(
        ErrorCode.IndexOptionsConflict,
        `An equivalent index already exists with the same name but different options. Requested index: ${JSON.stringify(spec)}, existing index: ${JSON.stringify(sameName)}`,
      );
    }
    return true;
  }
  const sameKey = collection.indexSpecs.find((existing) => canonicalKey(existing.key) === canonicalKey(spec.key));
  if (sameKey && optionsOf(sameKey) === optionsOf(spec)) {
    throw new MongoCommandError(ErrorCode.IndexOptionsConflict, `Index already exists with a different name: ${sameKey.name}`);
  }
  if (sameKey && (sameKey.unique ?? false) !== (spec.unique ?? false)) {
    throw new MongoCommandError(
      ErrorCode.IndexOptionsConflict,
      `An existing index has the same key pattern but different uniqueness: ${sameKey.name}`,
    );
  }
  return false;
}

function indexNamesToDrop(collection: MemoryCollection, target: unknown): string[] {
  const existing = collection.indexSpecs.filter((spec) => spec.name !== ID_INDEX_SPEC.name);
  if (target === '*') return existing.map((spec) => spec.name);
  const targets = Array.isArray(target) ? target : [target];
  return targets.map((one) => {
    if (typeof one !== 'string' && !isPlainObject(one)) {
      throw new MongoCommandError(ErrorCode.TypeMismatch, "BSON field 'dropIndexes.index' is the wrong type");
    }
    const spec = collection.findIndex(one as string | Document);
    if (spec?.name === ID_INDEX_SPEC.name) {
      throw new MongoCommandError(ErrorCode.InvalidOptions, 'cannot drop _id index');
    }
    if (!spec) {
      throw new MongoCommandError(
        ErrorCode.IndexNotFound,
        typeof one === 'string' ? `index not found with name [${one}]` : `can't find index with key: ${JSON.stringify(one)}`,
      );
    }
    return spec.name;
  });
}

function collectionInfo(collection: MemoryCollection, nameOnly: boolean): Document {
  if (nameOnly) return { name: collection.name, type: 'collection' };
  return {
    name: collection.name,
    type: 'collection',
    options: {},
    info: { readOnly: false, uuid: collection.uuid },
    idIndex: ID_INDEX_SPEC,
  };
}

export const namespaceCommands: Record<string, CommandHandler> = {
  listDatabases: (command, db, { storage }) => {
    const args = new CommandArgs('listDatabases', command).expectOnly(['filter', 'nameOnly', 'authorizedDatabases']);
    if (db !== 'admin') throw new MongoCommandError(ErrorCode.Unauthorized, 'listDatabases may only be run against the admin database.');
    const filter = compileFilter(args.document('filter'));
    const nameOnly = args.boolean('nameOnly') === true;
    const databases = storage
      .databaseNames()
      .map((name) => (nameOnly ? { name } : { name, sizeOnDisk: 0, empty: false }))
      .filter((entry) => filter.test(entry));
    return nameOnly ? { databases, ok: 1 } : { databases, totalSize: 0, totalSizeMb: 0, ok: 1 };
  },

  dropDatabase: (command, db, { storage, cursors }) => {
    new CommandArgs('dropDatabase', command).expectOnly([]);
    storage.dropDatabase(db);
    cursors.killNamespace(db, true);
    return { ok: 1 };
  },

  create: (command, db, { storage }) => {
    const args = new CommandArgs('create', command).expectOnly(['capped'], UNSUPPORTED_CREATE_OPTIONS);
    if (args.boolean('capped')) throw unsupported('capped collections');
    storage.createCollection(db, args.collectionName(db));
    return { ok: 1 };
  },

  drop: (command, db, { storage, cursors }) => {
    const args = new CommandArgs('drop', command).expectOnly([]);
    const name = args.collectionName(db);
    const collection = storage.collection(db, name);
    if (!collection) return { ok: 1 };
    const nIndexesWas = collection.indexSpecs.length;
    storage.dropCollection(db, name);
    cursors.killNamespace(`${db}.${name}`);
    return { nIndexesWas, ns: `${db}.${name}`, ok: 1 };
  },

  listCollections: (command, db, { storage, cursors, now }) => {
    const args = new CommandArgs('listCollections', command).expectOnly(['filter', 'nameOnly', 'authorizedCollections', 'cursor']);
    const filter = compileFilter(args.document('filter'));
    const nameOnly = args.boolean('nameOnly') === true;
    const batchSize = cursorOptions(args);
    const infos = storage
      .collections(db)
      .map((collection) => collectionInfo(collection, nameOnly))
      .filter((info) => filter.test(info));
    return cursors.open(`${db}.$cmd.listCollections`, infos, { batchSize: batchSize ?? DEFAULT_FIRST_BATCH_SIZE }, now());
  },

  createIndexes: (command, db, { storage }) => {
    const args = new CommandArgs('createIndexes', command).expectOnly(['indexes', 'commitQuorum']);
    const name = args.collectionName(db);
    const rawSpecs = args.array('indexes');
    if (!rawSpecs || rawSpecs.length === 0) {
      throw new MongoCommandError(ErrorCode.BadValue, 'Must specify at least one index to create');
    }
    const specs = rawSpecs.map((raw) => parseIndexSpec(raw, name));
    const { collection, created } = storage.collectionForWrite(db, name);
    const numIndexesBefore = collection.indexSpecs.length;
    const built: string[] = [];
    try {
      for (const spec of specs) {
        if (findEquivalent(collection, spec)) continue;
        collection.createIndex(spec);
        built.push(spec.name);
      }
    } catch (error) {
      for (const indexName of built) collection.dropIndex(indexName);
      if (created) storage.dropCollection(db, name);
      throw error;
    }
    return {
      createdCollectionAutomatically: created,
      numIndexesBefore,
      numIndexesAfter: collection.indexSpecs.length,
      ...(built.length === 0 ? { note: 'all indexes already exist' } : {}),
      ok: 1,
    };
  },

  listIndexes: (command, db, { storage, cursors, now }) => {
    const args = new CommandArgs('listIndexes', command).expectOnly(['cursor']);
    const name = args.collectionName(db);
    const collection = existingCollection(storage.collection(db, name), `${db}.${name}`);
    const batchSize = cursorOptions(args);
    return cursors.open(`${db}.${name}`, collection.indexSpecs.map((spec) => ({ ...spec })), { batchSize }, now());
  },

  dropIndexes: (command, db, { storage }) => {
    const args = new CommandArgs('dropIndexes', command).expectOnly(['index']);
    const name = args.collectionName(db);
    const collection = storage.collection(db, name);
    if (!collection) throw new MongoCommandError(ErrorCode.NamespaceNotFound, `ns not found ${db}.${name}`);
    if (!args.has('index')) throw new MongoCommandError(ErrorCode.FailedToParse, "BSON field 'dropIndexes.index' is missing but a required field");
    const nIndexesWas = collection.indexSpecs.length;
    for (const indexName of indexNamesToDrop(collection, command.index)) collection.dropIndex(indexName);
    return { nIndexesWas, ok: 1 };
  },
};
