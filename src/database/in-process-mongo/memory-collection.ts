import { Binary, Document, ObjectId, UUID } from 'bson';
import { bsonTypeName, canonicalKey, containsExotic, formatValue, getField, isPlainObject, toQueryView } from './bson-values';
import { DocumentKeys, IndexSpec, MemoryIndex, sameKeys } from './memory-index';
import { badValue, ErrorCode, MongoCommandError, unsupported } from './mongo-error';
import { compileFilter, CompiledFilter, equalityConditions } from './query-engine';

export const ID_INDEX_SPEC: IndexSpec = { v: 2, key: { _id: 1 }, name: '_id_' };

const PARTIAL_FILTER_OPERATORS = new Set(['$eq', '$exists', '$gt', '$gte', '$lt', '$lte', '$type', '$in']);

/** mongod accepts only these expressions in a partialFilterExpression. */
function validatePartialFilter(filter: unknown, depth = 0): void {
  if (!isPlainObject(filter)) throw new MongoCommandError(ErrorCode.CannotCreateIndex, 'partialFilterExpression must be an object');
  for (const key of Object.keys(filter)) {
    const value = filter[key];
    if (key === '$and' || key === '$or') {
      if (depth > 0 && key === '$or') {
        throw new MongoCommandError(ErrorCode.CannotCreateIndex, 'Expression not supported in partial index: nested $or');
      }
      if (!Array.isArray(value)) throw new MongoCommandError(ErrorCode.CannotCreateIndex, `${key} must be an array`);
      value.forEach((clause) => validatePartialFilter(clause, depth + 1));
    } else if (key.startsWith('$')) {
      throw new MongoCommandError(ErrorCode.CannotCreateIndex, `Expression not supported in partial index: ${key}`);
    } else if (isPlainObject(value) && Object.keys(value).some((k) => k.startsWith('$'))) {
      for (const op of Object.keys(value)) {
        if (!PARTIAL_FILTER_OPERATORS.has(op) || (op === '$exists' && value[op] !== true)) {
          throw new MongoCommandError(
            ErrorCode.CannotCreateIndex,
            `Expression not supported in partial index: ${key} ${op} ${formatValue(value[op])}`,
          );
        }
      }
    }
  }
}

function earliestDate(value: unknown): Date | undefined {
  if (value instanceof Date) return value;
  if (!Array.isArray(value)) return undefined;
  let earliest: Date | undefined;
  for (const element of value) if (element instanceof Date && (!earliest || element < earliest)) earliest = element;
  return earliest;
}

/**
 * The documents of one collection with their indexes. Documents are stored by the
 * canonical key of their `_id` (that map is the `_id` index) and are never mutated
 * once stored: writers replace them, so readers (cursors, results) may hold references.
 * Every method that writes either completes or throws before changing anything.
 */
export class MemoryCollection {
  readonly uuid: Binary = new UUID();
  private readonly docs = new Map<string, Document>();
  /** Stored documents holding values that mingo must see converted (see bson-values). */
  private readonly exotic = new WeakSet<Document>();
  private readonly secondary: MemoryIndex[] = [];

  constructor(
    readonly db: string,
    readonly name: string,
  ) {}

  get namespace(): string {
    return `${this.db}.${this.name}`;
  }

  get size(): number {
    return this.docs.size;
  }

  get indexSpecs(): IndexSpec[] {
    return [ID_INDEX_SPEC, ...this.secondary.map((index) => index.spec)];
  }

  get hasTtlIndex(): boolean {
    return this.secondary.some((index) => index.spec.expireAfterSeconds !== undefined);
  }

  all(): IterableIterator<Document> {
    return this.docs.values();
  }

  /** A document as queries see it: int64/decimal/typed doubles turned into numbers. */
  queryView(doc: Document): Document {
    return this.exotic.has(doc) ? toQueryView(doc) : doc;
  }

  findIndex(nameOrKey: string | Document): IndexSpec | undefined {
    return this.indexSpecs.find((spec) =>
      typeof nameOrKey === 'string' ? spec.name === nameOrKey : canonicalKey(spec.key) === canonicalKey(nameOrKey),
    );
  }

  /**
   * Documents that may match `filter`: those an index finds through an equality on its
   * first field (or on `_id`), otherwise every document. Callers test each candidate.
   */
  candidates(filter: Document): Iterable<Document> {
    const equalities = equalityConditions(filter);
    if (equalities.size === 0) return this.docs.values();
    const ids = equalities.get('_id');
    if (ids) {
      const found: Document[] = [];
      for (const key of new Set(ids.map(canonicalKey))) {
        const doc = this.docs.get(key);
        if (doc) found.push(doc);
      }
      return found;
    }
    let best: ReadonlySet<string> | undefined;
    for (const index of this.secondary) {
      const values = equalities.get(index.fields[0]);
      if (!values || !index.coversAllDocuments) continue;
      const full = index.fields.map((field) => equalities.get(field));
      let matched: ReadonlySet<string>;
      if (full.every((v) => v?.length === 1)) matched = index.lookupFull(full.map((v) => v![0]));
      else {
        const union = new Set<string>();
        for (const value of values) for (const id of index.lookup(canonicalKey(value))) union.add(id);
        matched = union;
      }
      if (!best || matched.size < best.size) best = matched;
    }
    if (!best) return this.docs.values();
    const found: Document[] = [];
    for (const id of best) found.push(this.docs.get(id)!);
    return found;
  }

  /** Matching documents in natural order, using an index when the filter allows. */
  find(filter: CompiledFilter, limit = Infinity): Document[] {
    const result: Document[] = [];
    if (limit <= 0) return result;
    for (const doc of filter.isEmpty ? this.docs.values() : this.candidates(filter.filter)) {
      if (filter.isEmpty || filter.test(this.queryView(doc))) {
        result.push(doc);
        if (result.length >= limit) break;
      }
    }
    return result;
  }

  private validateNewDocument(doc: Document): Document {
    if (!('_id' in doc)) doc = { _id: new ObjectId(), ...doc };
    else if (Object.keys(doc)[0] !== '_id') {
      const { _id, ...rest } = doc;
      doc = { _id, ...rest };
    }
    const idType = bsonTypeName(doc._id);
    if (idType === 'array' || idType === 'regex' || doc._id === undefined) {
      throw new MongoCommandError(ErrorCode.InvalidIdField, `The '_id' value cannot be of type ${idType}`);
    }
    for (const key of Object.keys(doc)) {
      if (key.startsWith('$')) throw badValue(`Document can't have $ prefixed field names: ${key}`);
      if (key === '__proto__') throw unsupported(`the field name '__proto__'`);
    }
    return doc;
  }

  private duplicateKey(index: IndexSpec, keyValue: Document): MongoCommandError {
    const shown = Object.keys(keyValue).map((field) => `${field}: ${formatValue(keyValue[field])}`).join(', ');
    return new MongoCommandError(
      ErrorCode.DuplicateKey,
      `E11000 duplicate key error collection: ${this.namespace} index: ${index.name} dup key: { ${shown} }`,
      { keyPattern: index.key, keyValue },
    );
  }

  private checkUnique(id: string, keys: DocumentKeys[]): void {
    this.secondary.forEach((index, i) => {
      const conflict = index.findConflict(id, keys[i]);
      if (conflict) throw this.duplicateKey(index.spec, index.keyValue(conflict));
    });
  }

  /** Inserts a document (adding `_id` first when missing) and returns the stored document. */
  insert(input: Document, exotic = containsExotic(input)): Document {
    const doc = this.validateNewDocument(input);
    const id = canonicalKey(doc._id);
    if (this.docs.has(id)) throw this.duplicateKey(ID_INDEX_SPEC, { _id: doc._id });
    const keys = this.secondary.map((index) => index.keysFor(doc));
    this.checkUnique(id, keys);
    this.secondary.forEach((index, i) => index.add(id, keys[i]));
    this.docs.set(id, doc);
    if (exotic) this.exotic.add(doc);
    return doc;
  }

  /** Replaces a stored document with its updated version (same `_id`). */
  replace(previous: Document, next: Document, exotic: boolean): void {
    const id = canonicalKey(previous._id);
    const before = this.secondary.map((index) => index.keysFor(previous));
    const after = this.secondary.map((index) => index.keysFor(next));
    this.secondary.forEach((index, i) => {
      if (sameKeys(before[i], after[i])) return;
      const conflict = index.findConflict(id, after[i]);
      if (conflict) throw this.duplicateKey(index.spec, index.keyValue(conflict));
    });
    this.secondary.forEach((index, i) => {
      if (sameKeys(before[i], after[i])) return;
      index.remove(id, before[i]);
      index.add(id, after[i]);
    });
    this.docs.set(id, next);
    // An update only knows what it wrote; a document that held exotic values may still.
    if (exotic || (this.exotic.has(previous) && containsExotic(next))) this.exotic.add(next);
  }

  delete(doc: Document): void {
    const id = canonicalKey(doc._id);
    if (!this.docs.has(id)) return;
    this.secondary.forEach((index) => index.remove(id, index.keysFor(doc)));
    this.docs.delete(id);
  }

  /** Builds an index over the existing documents; fails without side effects on a duplicate. */
  createIndex(spec: IndexSpec): void {
    if (spec.partialFilterExpression !== undefined) validatePartialFilter(spec.partialFilterExpression);
    const partial = spec.partialFilterExpression
      ? compileFilter(spec.partialFilterExpression, 'partialFilterExpression')
      : undefined;
    const index = new MemoryIndex(spec, partial && ((doc) => partial.test(toQueryView(doc))));
    for (const [id, doc] of this.docs) {
      const keys = index.keysFor(doc);
      const conflict = index.findConflict(id, keys);
      if (conflict) {
        index.clear();
        throw this.duplicateKey(spec, index.keyValue(conflict));
      }
      index.add(id, keys);
    }
    this.secondary.push(index);
  }

  dropIndex(name: string): void {
    const position = this.secondary.findIndex((index) => index.name === name);
    if (position >= 0) this.secondary.splice(position, 1);
  }

  /** Deletes documents whose TTL-indexed date is older than `expireAfterSeconds`. */
  removeExpired(now: number): number {
    let removed = 0;
    for (const index of this.secondary) {
      const seconds = index.spec.expireAfterSeconds;
      if (seconds === undefined || index.fields.length !== 1) continue;
      const path = index.fields[0].split('.');
      // Deleting from a Map while iterating it is safe in JS.
      for (const doc of this.docs.values()) {
        let value: unknown = doc;
        for (const part of path) value = isPlainObject(value) ? getField(value, part) : undefined;
        const date = earliestDate(value);
        if (date && date.getTime() + seconds * 1000 <= now) {
          this.delete(doc);
          removed++;
        }
      }
    }
    return removed;
  }
}
