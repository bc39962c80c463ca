import { Document } from 'bson';
import { canonicalKey, getField, hasField, isPlainObject } from './bson-values';
import { ErrorCode, MongoCommandError } from './mongo-error';

export interface IndexSpec {
  v: number;
  key: Document;
  name: string;
  unique?: boolean;
  sparse?: boolean;
  partialFilterExpression?: Document;
  expireAfterSeconds?: number;
}

/** One index key of a document: its canonical form and the values it was built from. */
export interface IndexKey {
  key: string;
  values: unknown[];
}

export interface DocumentKeys {
  /** Distinct keys over the whole key pattern; empty when the document is not indexed. */
  keys: IndexKey[];
  /** Distinct canonical keys of the first field alone (the lookup prefix). */
  prefixes: string[];
}

const NOT_INDEXED: DocumentKeys = { keys: [], prefixes: [] };
const EMPTY_ARRAY_KEY = Symbol('empty array');

/** Values a path yields for indexing, expanding arrays like mongod's multikey indexes. */
function collectPathValues(value: unknown, parts: string[], depth: number, out: unknown[]): boolean {
  if (depth === parts.length) {
    if (Array.isArray(value)) {
      if (value.length === 0) out.push(EMPTY_ARRAY_KEY);
      else out.push(...value);
      return true;
    }
    out.push(value ?? null);
    return false;
  }
  if (Array.isArray(value)) {
    const part = parts[depth];
    if (/^\d+$/.test(part) && Number(part) < value.length) {
      return collectPathValues(value[Number(part)], parts, depth + 1, out);
    }
    if (value.length === 0) {
      out.push(null);
      return true;
    }
    for (const element of value) collectPathValues(element, parts, depth, out);
    return true;
  }
  if (isPlainObject(value)) return collectPathValues(getField(value, parts[depth]), parts, depth + 1, out);
  out.push(null);
  return false;
}

const EMPTY_ARRAY_CANONICAL = '\u0000[]';
const keyOf = (value: unknown) => (value === EMPTY_ARRAY_KEY ? EMPTY_ARRAY_CANONICAL : canonicalKey(value));
const valueOf = (value: unknown) => (value === EMPTY_ARRAY_KEY ? undefined : value);

function hasPath(doc: Document, parts: string[]): boolean {
  let value: unknown = doc;
  for (const part of parts) {
    if (Array.isArray(value)) return true;
    if (!isPlainObject(value) || !hasField(value, part)) return false;
    value = value[part];
  }
  return true;
}

function addTo(map: Map<string, Set<string>>, key: string, id: string): void {
  const ids = map.get(key);
  if (ids) ids.add(id);
  else map.set(key, new Set([id]));
}

function removeFrom(map: Map<string, Set<string>>, key: string, id: string): void {
  const ids = map.get(key);
  if (!ids) return;
  ids.delete(id);
  if (ids.size === 0) map.delete(key);
}

/**
 * An incrementally maintained hash index: canonical key -> ids of the documents that
 * carry it. It answers equality lookups on its first field and enforces uniqueness;
 * it keeps no order (range queries scan the collection).
 */
export class MemoryIndex {
  readonly fields: string[];
  private readonly paths: string[][];
  private readonly entries = new Map<string, Set<string>>();
  private readonly prefixEntries: Map<string, Set<string>>;

  constructor(
    readonly spec: IndexSpec,
    private readonly partialFilter?: (doc: Document) => boolean,
  ) {
    this.fields = Object.keys(spec.key);
    this.paths = this.fields.map((field) => field.split('.'));
    this.prefixEntries = this.fields.length === 1 ? this.entries : new Map();
  }

  get name(): string {
    return this.spec.name;
  }

  get unique(): boolean {
    return this.spec.unique === true;
  }

  /** Usable to find every document with a given first-field value. */
  get coversAllDocuments(): boolean {
    return !this.spec.sparse && !this.partialFilter;
  }

  keysFor(doc: Document): DocumentKeys {
    if (this.spec.sparse && !this.paths.some((parts) => hasPath(doc, parts))) return NOT_INDEXED;
    if (this.partialFilter && !this.partialFilter(doc)) return NOT_INDEXED;
    const single = this.singleKey(doc);
    if (single) return single;
    const perField: unknown[][] = [];
    const multikey: string[] = [];
    this.paths.forEach((parts, i) => {
      const values: unknown[] = [];
      if (collectPathValues(doc, parts, 0, values)) multikey.push(this.fields[i]);
      perField.push(values);
    });
    if (multikey.length > 1) {
      throw new MongoCommandError(
        ErrorCode.CannotIndexParallelArrays,
        `cannot index parallel arrays [${multikey[1]}] [${multikey[0]}]`,
      );
    }
    const keys = new Map<string, IndexKey>();
    const combine = (i: number, values: unknown[]) => {
      if (i === perField.length) {
        const parts = values.map(keyOf);
        const key = parts.length === 1 ? parts[0] : JSON.stringify(parts);
        if (!keys.has(key)) keys.set(key, { key, values: values.map(valueOf) });
        return;
      }
      for (const value of perField[i]) combine(i + 1, [...values, value]);
    };
    combine(0, []);
    const prefixes = this.fields.length === 1 ? [...keys.keys()] : [...new Set(perField[0].map(keyOf))];
    return { keys: [...keys.values()], prefixes };
  }

  /** The keys of a document whose indexed paths go through no array (the usual case). */
  private singleKey(doc: Document): DocumentKeys | undefined {
    const values: unknown[] = [];
    for (const parts of this.paths) {
      let value: unknown = doc;
      for (const part of parts) {
        if (Array.isArray(value)) return undefined;
        value = isPlainObject(value) ? getField(value, part) : undefined;
      }
      if (Array.isArray(value)) return undefined;
      values.push(value ?? null);
    }
    if (values.length === 1) {
      const key = canonicalKey(values[0]);
      return { keys: [{ key, values }], prefixes: [key] };
    }
    const parts = values.map(canonicalKey);
    return { keys: [{ key: JSON.stringify(parts), values }], prefixes: [parts[0]] };
  }

  /** Canonical key of a full key value (one value per indexed field). */
  fullKey(values: unknown[]): string {
    return values.length === 1 ? canonicalKey(values[0]) : JSON.stringify(values.map(canonicalKey));
  }

  /** Ids of documents whose indexed fields equal these values (one per field). */
  lookupFull(values: unknown[]): ReadonlySet<string> {
    return this.entries.get(this.fullKey(values)) ?? new Set();
  }

  add(id: string, doc: DocumentKeys): void {
    for (const { key } of doc.keys) addTo(this.entries, key, id);
    if (this.prefixEntries !== this.entries) for (const prefix of doc.prefixes) addTo(this.prefixEntries, prefix, id);
  }

  remove(id: string, doc: DocumentKeys): void {
    for (const { key } of doc.keys) removeFrom(this.entries, key, id);
    if (this.prefixEntries !== this.entries) for (const prefix of doc.prefixes) removeFrom(this.prefixEntries, prefix, id);
  }

  /** The first key of `doc` already held by another document, if this index is unique. */
  findConflict(id: string, doc: DocumentKeys): IndexKey | undefined {
    if (!this.unique) return undefined;
    for (const entry of doc.keys) {
      const ids = this.entries.get(entry.key);
      if (ids && (ids.size > 1 || !ids.has(id))) return entry;
    }
    return undefined;
  }

  /** Ids of documents whose first indexed field equals the value with this canonical key. */
  lookup(prefixKey: string): ReadonlySet<string> {
    return this.prefixEntries.get(prefixKey) ?? new Set();
  }

  clear(): void {
    this.entries.clear();
    this.prefixEntries.clear();
  }

  /** `{ userId: "x" }` for the duplicate-key error's `keyValue`. */
  keyValue(entry: IndexKey): Document {
    const result: Document = {};
    this.fields.forEach((field, i) => (result[field] = entry.values[i] ?? null));
    return result;
  }
}

export const sameKeys = (a: DocumentKeys, b: DocumentKeys): boolean =>
  a.keys.length === b.keys.length && a.keys.every((entry, i) => entry.key === b.keys[i].key);
