import { Binary, Decimal128, Document, Double, EJSON, Long, ObjectId, Timestamp } from 'bson';

/**
 * Value model of stored documents.
 *
 * Commands are deserialized with `promoteValues: false` and then normalised so that
 * int32 and double become plain JS numbers, except a double holding an int32-sized
 * integer, which stays a `Double` (a plain number would go back to the client as int32).
 * `Long` and `Decimal128` stay as they are. These three wrapper types are "exotic":
 * mingo cannot compare them, so queries and aggregations see a numeric view of any
 * document that holds one (see `toQueryView`).
 */

const INT32_MIN = -2147483648;
const INT32_MAX = 2147483647;

type BsonObject = { _bsontype: string };

export function bsonTypeTag(value: unknown): string | undefined {
  return value !== null && typeof value === 'object' ? (value as Partial<BsonObject>)._bsontype : undefined;
}

export function isPlainObject(value: unknown): value is Document {
  if (value === null || typeof value !== 'object') return false;
  // Fast path for the common case; a field named "constructor" falls through to the check.
  if ((value as { constructor?: unknown }).constructor === Object) return true;
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

const hasOwn = Object.prototype.hasOwnProperty;

/** A document's own field: names like `constructor` must not resolve on Object.prototype. */
export const getField = (doc: Document, name: string): unknown => (hasOwn.call(doc, name) ? doc[name] : undefined);

export const hasField = (doc: Document, name: string): boolean => hasOwn.call(doc, name);

export const isInt32 = (n: number) => Number.isInteger(n) && n >= INT32_MIN && n <= INT32_MAX && !Object.is(n, -0);

const EXOTIC = new Set(['Long', 'Double', 'Int32', 'Decimal128']);

export const isExoticNumber = (value: unknown): boolean => EXOTIC.has(bsonTypeTag(value) ?? '');

/** MongoDB's type alias for a stored value, as `$type` and error messages name it. */
export function bsonTypeName(value: unknown): string {
  switch (typeof value) {
    case 'undefined':
      return 'missing';
    case 'number':
      return isInt32(value) ? 'int' : 'double';
    case 'string':
      return 'string';
    case 'boolean':
      return 'bool';
  }
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  if (value instanceof Date) return 'date';
  if (value instanceof RegExp) return 'regex';
  switch (bsonTypeTag(value)) {
    case 'Int32':
      return 'int';
    case 'Double':
      return 'double';
    case 'Long':
      return 'long';
    case 'Decimal128':
      return 'decimal';
    case 'ObjectId':
      return 'objectId';
    case 'Binary':
      return 'binData';
    case 'Timestamp':
      return 'timestamp';
    case 'MinKey':
      return 'minKey';
    case 'MaxKey':
      return 'maxKey';
    case 'BSONRegExp':
      return 'regex';
    case 'Code':
      return 'javascript';
    case 'BSONSymbol':
      return 'symbol';
    case 'DBRef':
      return 'object';
  }
  return 'object';
}

export const isNumeric = (value: unknown): boolean =>
  typeof value === 'number' || isExoticNumber(value);

/** A numeric BSON value as a JS number (lossy for int64 beyond 2^53 and for decimals). */
export function toNumber(value: unknown): number {
  if (typeof value === 'number') return value;
  switch (bsonTypeTag(value)) {
    case 'Long':
      return (value as Long).toNumber();
    case 'Double':
    case 'Int32':
      return (value as Double).value;
    case 'Decimal128':
      return Number((value as Decimal128).toString());
  }
  return NaN;
}

/** Converts incoming int32/double wrappers in place (see the module comment). */
export function normalizeIncoming<T>(value: T): T {
  return normalizeValue(value) as T;
}

function normalizeValue(value: unknown): unknown {
  if (value === null || typeof value !== 'object') return value;
  const tag = (value as Partial<BsonObject>)._bsontype;
  if (tag === 'Int32') return (value as Double).value;
  if (tag === 'Double') {
    const n = (value as Double).value;
    return isInt32(n) ? value : n;
  }
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) value[i] = normalizeValue(value[i]);
  } else if (tag === undefined && isPlainObject(value)) {
    for (const key of Object.keys(value)) value[key] = normalizeValue(value[key]);
  }
  return value;
}

export function containsExotic(value: unknown): boolean {
  if (value === null || typeof value !== 'object') return false;
  if (isExoticNumber(value)) return true;
  if (Array.isArray(value)) return value.some(containsExotic);
  if (!isPlainObject(value)) return false;
  for (const key in value) if (containsExotic(value[key])) return true;
  return false;
}

/** The same structure with exotic numbers replaced by JS numbers, sharing untouched parts. */
export function toQueryView<T>(value: T): T {
  if (value === null || typeof value !== 'object') return value;
  if (isExoticNumber(value)) return toNumber(value) as T;
  if (Array.isArray(value)) {
    let copy: unknown[] | undefined;
    for (let i = 0; i < value.length; i++) {
      const converted = toQueryView(value[i]);
      if (converted !== value[i]) (copy ??= value.slice())[i] = converted;
    }
    return (copy ?? value) as T;
  }
  if (!isPlainObject(value)) return value;
  const source: Document = value;
  let copy: Document | undefined;
  for (const key of Object.keys(source)) {
    const converted = toQueryView(source[key]);
    if (converted !== source[key]) (copy ??= { ...source })[key] = converted;
  }
  return (copy ?? value) as T;
}

/** Copies arrays and plain objects; BSON values and dates are immutable here and shared. */
export function cloneDeep<T>(value: T): T {
  if (value === null || typeof value !== 'object') return value;
  if (Array.isArray(value)) return value.map(cloneDeep) as T;
  if (!isPlainObject(value)) return value;
  const source: Document = value;
  const copy: Document = {};
  for (const key of Object.keys(source)) copy[key] = cloneDeep(source[key]);
  return copy as T;
}

/** Every non-string key starts with this; strings that do are escaped, so keys never collide. */
const TAG = '\u0000';

function numberKey(n: number): string {
  if (Number.isNaN(n)) return TAG + 'nNaN';
  if (!Number.isFinite(n)) return n > 0 ? TAG + 'nInf' : TAG + 'n-Inf';
  if (Number.isInteger(n)) return TAG + 'n' + (Math.abs(n) <= Number.MAX_SAFE_INTEGER ? String(n + 0) : BigInt(n).toString());
  return TAG + 'n' + String(n);
}

/**
 * A string that is equal for two values exactly when MongoDB's equality says they are
 * equal: numbers of any BSON numeric type by value, ObjectIds by bytes, dates by time,
 * embedded documents field by field in order. Used by indexes, $addToSet and distinct.
 * A string is its own key (the hot case: no allocation); missing and null share a key.
 */
export function canonicalKey(value: unknown): string {
  switch (typeof value) {
    case 'string':
      return value.charCodeAt(0) === 0 ? TAG + 's' + value : value;
    case 'undefined':
      return TAG + 'null';
    case 'number':
      return numberKey(value);
    case 'boolean':
      return value ? TAG + 'b1' : TAG + 'b0';
  }
  if (value === null) return TAG + 'null';
  if (Array.isArray(value)) return TAG + 'a' + JSON.stringify(value.map(canonicalKey));
  if (value instanceof Date) return TAG + 'd' + value.getTime();
  if (value instanceof RegExp) return TAG + 'r' + value.source + '/' + value.flags;
  switch (bsonTypeTag(value)) {
    case 'ObjectId':
      return TAG + 'o' + (value as ObjectId).toHexString();
    case 'Long': {
      const long = value as Long;
      return long.greaterThan(Long.fromNumber(Number.MAX_SAFE_INTEGER)) ||
        long.lessThan(Long.fromNumber(-Number.MAX_SAFE_INTEGER))
        ? TAG + 'n' + long.toString()
        : numberKey(long.toNumber());
    }
    case 'Double':
    case 'Int32':
    case 'Decimal128':
      return numberKey(toNumber(value));
    case 'Binary':
      return TAG + 'x' + (value as Binary).sub_type + ':' + (value as Binary).toString('base64');
    case 'Timestamp':
      return TAG + 't' + (value as Timestamp).toString();
    case 'MinKey':
      return TAG + 'min';
    case 'MaxKey':
      return TAG + 'max';
    case undefined:
      return TAG + 'O' + JSON.stringify(Object.keys(value as Document).map((k) => [k, canonicalKey((value as Document)[k])]));
  }
  return TAG + bsonTypeName(value) + ':' + EJSON.stringify(value as Document, { relaxed: false });
}

/** Rank of each type in MongoDB's cross-type comparison order. */
export function typeRank(value: unknown): number {
  switch (typeof value) {
    case 'number':
      return 3;
    case 'string':
      return 4;
    case 'boolean':
      return 9;
    case 'undefined':
      return 2;
  }
  if (value === null) return 2;
  if (value instanceof Date) return 10;
  switch (bsonTypeName(value)) {
    case 'minKey':
      return 1;
    case 'missing':
    case 'null':
      return 2;
    case 'int':
    case 'long':
    case 'double':
    case 'decimal':
      return 3;
    case 'string':
    case 'symbol':
      return 4;
    case 'object':
      return 5;
    case 'array':
      return 6;
    case 'binData':
      return 7;
    case 'objectId':
      return 8;
    case 'bool':
      return 9;
    case 'date':
      return 10;
    case 'timestamp':
      return 11;
    case 'regex':
      return 12;
    case 'maxKey':
      return 13;
  }
  return 14;
}

const cmp = <T>(a: T, b: T) => (a < b ? -1 : a > b ? 1 : 0);

/** Compares two values in MongoDB's BSON order (simple collation). */
export function compareBson(a: unknown, b: unknown): number {
  if (typeof a === 'number' && typeof b === 'number' && !Number.isNaN(a) && !Number.isNaN(b)) return cmp(a, b);
  if (typeof a === 'string' && typeof b === 'string') return cmp(a, b);
  const rankA = typeRank(a);
  const rankB = typeRank(b);
  if (rankA !== rankB) return cmp(rankA, rankB);
  switch (rankA) {
    case 3: {
      if (bsonTypeTag(a) === 'Long' && bsonTypeTag(b) === 'Long') return (a as Long).compare(b as Long);
      const x = toNumber(a);
      const y = toNumber(b);
      if (Number.isNaN(x) || Number.isNaN(y)) return cmp(Number.isNaN(x) ? 0 : 1, Number.isNaN(y) ? 0 : 1);
      return cmp(x, y);
    }
    case 4:
      return cmp(String(a), String(b));
    case 5:
      return compareDocuments(a as Document, b as Document);
    case 6: {
      const xs = a as unknown[];
      const ys = b as unknown[];
      for (let i = 0; i < Math.min(xs.length, ys.length); i++) {
        const order = compareBson(xs[i], ys[i]);
        if (order) return order;
      }
      return cmp(xs.length, ys.length);
    }
    case 7: {
      const x = a as Binary;
      const y = b as Binary;
      return cmp(x.length(), y.length()) || cmp(x.sub_type, y.sub_type) || Buffer.compare(x.buffer, y.buffer);
    }
    case 8:
      return cmp((a as ObjectId).toHexString(), (b as ObjectId).toHexString());
    case 9:
      return cmp(a ? 1 : 0, b ? 1 : 0);
    case 10:
      return cmp((a as Date).getTime(), (b as Date).getTime());
    case 11:
      return (a as Timestamp).compare(b as Timestamp);
    case 12:
      return cmp(String(a), String(b));
  }
  return 0;
}

function compareDocuments(a: Document, b: Document): number {
  const keysA = Object.keys(a);
  const keysB = Object.keys(b);
  for (let i = 0; i < Math.min(keysA.length, keysB.length); i++) {
    const order =
      cmp(typeRank(a[keysA[i]]), typeRank(b[keysB[i]])) ||
      cmp(keysA[i], keysB[i]) ||
      compareBson(a[keysA[i]], b[keysB[i]]);
    if (order) return order;
  }
  return cmp(keysA.length, keysB.length);
}

/** A view of serialised BSON as a Buffer, without copying. */
export const asBuffer = (bytes: Uint8Array): Buffer =>
  Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);

/** Renders a value the way mongod prints it in error messages, e.g. `{ userId: "x" }`. */
export function formatValue(value: unknown): string {
  if (value === undefined) return 'undefined';
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'number' || typeof value === 'boolean' || value === null) return String(value);
  if (Array.isArray(value)) return `[ ${value.map(formatValue).join(', ')} ]`;
  if (value instanceof Date) return `new Date(${value.getTime()})`;
  if (isPlainObject(value)) {
    const entries = Object.keys(value).map((k) => `${k}: ${formatValue(value[k])}`);
    return entries.length ? `{ ${entries.join(', ')} }` : '{}';
  }
  switch (bsonTypeTag(value)) {
    case 'ObjectId':
      return `ObjectId('${(value as ObjectId).toHexString()}')`;
    case 'Long':
      return (value as Long).toString();
    case 'Double':
    case 'Int32':
      return String((value as Double).value);
    case 'Decimal128':
      return `${(value as Decimal128).toString()}`;
  }
  return String(value);
}
