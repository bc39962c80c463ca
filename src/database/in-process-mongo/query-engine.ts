import { Document } from 'bson';
import { Aggregator } from 'mingo/aggregator';
import { Query } from 'mingo/query';
import {
  bsonTypeTag,
  canonicalKey,
  cloneDeep,
  compareBson,
  getField,
  hasField,
  typeRank,
  isPlainObject,
  toQueryView,
} from './bson-values';
import { isOperatorObject, mingoOptions, withMingo } from './mingo-context';
import { badValue, MongoCommandError, unsupported } from './mongo-error';

export type DocumentPredicate = (doc: Document) => boolean;

const LOGICAL = new Set(['$and', '$or', '$nor']);
const UNSUPPORTED_TOP_LEVEL = new Set(['$where', '$text', '$jsonSchema']);
const UNSUPPORTED_FIELD_OPERATORS = new Set([
  '$near',
  '$nearSphere',
  '$geoWithin',
  '$geoIntersects',
  '$within',
  '$meta',
]);

/** Checks the operator arguments mingo would otherwise accept silently and answer wrongly. */
function validateFilter(filter: unknown, where = 'filter'): void {
  if (!isPlainObject(filter)) throw badValue(`${where} must be an object`);
  for (const key of Object.keys(filter)) {
    const value = filter[key];
    if (LOGICAL.has(key)) {
      if (!Array.isArray(value)) throw badValue(`${key} must be an array`);
      if (value.length === 0) throw badValue('$and/$or/$nor must be a nonempty array');
      for (const clause of value) {
        if (!isPlainObject(clause)) throw badValue('$or/$and/$nor entries need to be full objects');
        validateFilter(clause, where);
      }
    } else if (UNSUPPORTED_TOP_LEVEL.has(key)) {
      throw unsupported(`query operator ${key}`);
    } else if (key.startsWith('$')) {
      if (key !== '$expr' && key !== '$comment') throw badValue(`unknown top level operator: ${key}`);
    } else if (isOperatorObject(value)) {
      validateFieldOperators(key, value);
    }
  }
}

function validateFieldOperators(field: string, ops: Document): void {
  for (const op of Object.keys(ops)) {
    const arg = ops[op];
    if (UNSUPPORTED_FIELD_OPERATORS.has(op)) throw unsupported(`query operator ${op}`);
    switch (op) {
      case '$in':
      case '$nin':
      case '$all':
        if (!Array.isArray(arg)) throw badValue(`${op} needs an array`);
        break;
      case '$size':
        if (typeof arg !== 'number' || !Number.isInteger(arg) || arg < 0) {
          throw badValue(`Failed to parse $size. Expected a non-negative whole number in: $size: ${String(arg)}`);
        }
        break;
      case '$mod':
        if (!Array.isArray(arg) || arg.length !== 2 || arg.some((n) => typeof n !== 'number')) {
          throw badValue('malformed mod, needs to be an array of two numbers');
        }
        if (arg[0] === 0) throw badValue('divisor cannot be 0');
        break;
      case '$elemMatch':
        if (!isPlainObject(arg)) throw badValue('$elemMatch needs an Object');
        validateFilter(isOperatorObject(arg) && !Object.keys(arg).some((k) => LOGICAL.has(k)) ? {} : arg);
        break;
      case '$not':
        if (!(arg instanceof RegExp) && !isPlainObject(arg)) throw badValue('$not needs a regex or a document');
        if (isPlainObject(arg)) {
          if (Object.keys(arg).length === 0) throw badValue('$not cannot be empty');
          if (!isOperatorObject(arg)) throw badValue(`unknown operator: ${Object.keys(arg)[0]}`);
          validateFieldOperators(field, arg);
        }
        break;
      case '$regex':
        if (typeof arg !== 'string' && !(arg instanceof RegExp)) throw badValue('$regex has to be a string');
        break;
      case '$options':
        if (!('$regex' in ops)) throw badValue('$options needs a $regex');
        break;
    }
  }
}

/** Strips what mongod accepts but mingo does not know (`$comment`) and numeric wrappers. */
function prepareFilter(filter: Document): Document {
  const prepared = toQueryView(filter);
  if (!('$comment' in prepared)) return prepared;
  const { $comment: _comment, ...rest } = prepared;
  return rest;
}

export interface CompiledFilter {
  readonly filter: Document;
  readonly isEmpty: boolean;
  /** Tests a document in its query view (see `toQueryView`). */
  test: DocumentPredicate;
}

function isSimpleScalar(value: unknown): boolean {
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return true;
    case 'number':
      return Number.isFinite(value);
  }
  return value instanceof Date || bsonTypeTag(value) === 'ObjectId';
}

function isDigits(part: string): boolean {
  return part.length > 0 && /^\d+$/.test(part);
}

type ValuePredicate = (value: unknown) => boolean;

/** Whether any value at the path (array elements included, as MongoDB matches) satisfies `test`. */
function anyValue(value: unknown, parts: string[], depth: number, test: ValuePredicate): boolean {
  if (depth === parts.length) {
    if (Array.isArray(value)) return value.some(test);
    return value !== undefined && test(value);
  }
  if (Array.isArray(value)) {
    const part = parts[depth];
    if (isDigits(part) && anyValue(value[Number(part)], parts, depth + 1, test)) return true;
    return value.some((element) => isPlainObject(element) && anyValue(element, parts, depth, test));
  }
  return isPlainObject(value) && anyValue(value[parts[depth]], parts, depth + 1, test);
}

function rangePredicate(operand: unknown, accept: (order: number) => boolean): ValuePredicate {
  const rank = typeRank(operand);
  return (value) => typeRank(value) === rank && !Number.isNaN(value) && accept(compareBson(value, operand));
}

/**
 * A predicate for one field's condition, or undefined when mingo has to evaluate it.
 * Documents given to it are query views (plain objects whose numbers are JS numbers).
 */
function fieldPredicate(parts: string[], condition: unknown): DocumentPredicate | undefined {
  const equals = (operand: unknown): DocumentPredicate => {
    const key = canonicalKey(operand);
    const test: ValuePredicate =
      typeof operand === 'number'
        ? (value) => value === operand || (typeof value !== 'number' && canonicalKey(value) === key)
        : typeof operand === 'string'
          ? (value) => value === operand
          : (value) => canonicalKey(value) === key;
    return (doc) => anyValue(doc[parts[0]], parts, 1, test);
  };
  if (isSimpleScalar(condition)) return equals(condition);
  if (!isPlainObject(condition)) return undefined;
  const predicates: DocumentPredicate[] = [];
  for (const op of Object.keys(condition)) {
    const operand = condition[op];
    const scalars = Array.isArray(operand) ? operand.every(isSimpleScalar) : isSimpleScalar(operand);
    if (!scalars) return undefined;
    switch (op) {
      case '$eq':
        predicates.push(equals(operand));
        break;
      case '$ne': {
        const equal = equals(operand);
        predicates.push((doc) => !equal(doc));
        break;
      }
      case '$in':
      case '$nin': {
        if (!Array.isArray(operand)) return undefined;
        const keys = new Set(operand.map(canonicalKey));
        const within: DocumentPredicate = (doc) => anyValue(doc[parts[0]], parts, 1, (value) => keys.has(canonicalKey(value)));
        predicates.push(op === '$in' ? within : (doc) => !within(doc));
        break;
      }
      case '$gt':
      case '$gte':
      case '$lt':
      case '$lte': {
        if (typeof operand === 'boolean') return undefined;
        const test = rangePredicate(
          operand,
          op === '$gt' ? (o) => o > 0 : op === '$gte' ? (o) => o >= 0 : op === '$lt' ? (o) => o < 0 : (o) => o <= 0,
        );
        predicates.push((doc) => anyValue(doc[parts[0]], parts, 1, test));
        break;
      }
      default:
        return undefined;
    }
  }
  return predicates.length === 1 ? predicates[0] : (doc) => predicates.every((predicate) => predicate(doc));
}

/**
 * Filters made only of equality, $ne, $in, $nin and range conditions on scalars (the shape
 * of point queries like `{ userId }` and of most scans) are matched natively with
 * MongoDB's semantics; anything else goes to mingo.
 */
function nativeMatcher(filter: Document): DocumentPredicate | undefined {
  const predicates: DocumentPredicate[] = [];
  for (const key of Object.keys(filter)) {
    const parts = key.split('.');
    // Names like `constructor` resolve on Object.prototype when missing; mingo guards them.
    if (key.startsWith('$') || parts.some((part) => part in Object.prototype)) return undefined;
    const predicate = fieldPredicate(parts, filter[key]);
    if (!predicate) return undefined;
    predicates.push(predicate);
  }
  return predicates.length === 1 ? predicates[0] : (doc) => predicates.every((predicate) => predicate(doc));
}

export function compileFilter(filter: Document | undefined, where = 'filter'): CompiledFilter {
  const source = filter ?? {};
  validateFilter(source, where);
  const prepared = prepareFilter(source);
  if (Object.keys(prepared).length === 0) return { filter: source, isEmpty: true, test: () => true };
  const simple = nativeMatcher(prepared);
  if (simple) return { filter: source, isEmpty: false, test: simple };
  const query = withMingo(where, () => new Query(prepared, mingoOptions()));
  return {
    filter: source,
    isEmpty: false,
    test: (doc) => withMingo(where, () => query.test(doc)),
  };
}

const INDEXABLE_TAGS = new Set(['ObjectId', 'Long', 'Double', 'Int32', 'Decimal128']);

function isIndexableScalar(value: unknown): boolean {
  switch (typeof value) {
    case 'string':
    case 'number':
    case 'boolean':
      return true;
  }
  return value instanceof Date || INDEXABLE_TAGS.has(bsonTypeTag(value) ?? '');
}

/**
 * Top-level equality conditions that an index on `field` can answer:
 * `{ f: v }`, `{ f: { $eq: v } }`, `{ f: { $in: [...] } }`, also inside a top-level `$and`.
 * Every candidate is still tested against the whole filter.
 */
export function equalityConditions(filter: Document): Map<string, unknown[]> {
  const result = new Map<string, unknown[]>();
  const visit = (clause: Document) => {
    for (const key of Object.keys(clause)) {
      const value = clause[key];
      if (key === '$and' && Array.isArray(value)) {
        for (const sub of value) if (isPlainObject(sub)) visit(sub);
        continue;
      }
      if (key.startsWith('$') || result.has(key)) continue;
      if (isIndexableScalar(value)) {
        result.set(key, [value]);
      } else if (isPlainObject(value) && isOperatorObject(value)) {
        if ('$eq' in value && isIndexableScalar(value.$eq)) result.set(key, [value.$eq]);
        else if (Array.isArray(value.$in) && value.$in.length > 0 && value.$in.every(isIndexableScalar)) {
          result.set(key, value.$in);
        }
      }
    }
  };
  visit(filter);
  return result;
}

export type Projector = (doc: Document) => Document;

function isBooleanLike(value: unknown): boolean {
  return typeof value === 'number' || typeof value === 'boolean';
}

function includePath(source: unknown, parts: string[], depth: number): unknown {
  if (Array.isArray(source)) {
    return source
      .filter((element) => isPlainObject(element) || Array.isArray(element))
      .map((element) => includePath(element, parts, depth));
  }
  if (!isPlainObject(source)) return undefined;
  const key = parts[depth];
  if (!hasField(source, key)) return {};
  if (depth === parts.length - 1) return { [key]: source[key] };
  const inner = includePath(source[key], parts, depth + 1);
  return inner === undefined ? {} : { [key]: inner };
}

function mergeInto(target: Document, addition: unknown): void {
  if (!isPlainObject(addition)) return;
  for (const key of Object.keys(addition)) {
    const value = addition[key];
    if (isPlainObject(target[key]) && isPlainObject(value)) mergeInto(target[key], value);
    else if (Array.isArray(target[key]) && Array.isArray(value)) {
      const existing = target[key] as unknown[];
      value.forEach((element, i) => {
        if (isPlainObject(existing[i]) && isPlainObject(element)) mergeInto(existing[i] as Document, element);
      });
    } else target[key] = value;
  }
}

function excludePath(doc: Document, parts: string[]): Document {
  const [head, ...rest] = parts;
  if (!hasField(doc, head)) return doc;
  const copy = { ...doc };
  if (rest.length === 0) {
    delete copy[head];
    return copy;
  }
  const child = doc[head];
  if (isPlainObject(child)) copy[head] = excludePath(child, rest);
  else if (Array.isArray(child)) copy[head] = child.map((e) => (isPlainObject(e) ? excludePath(e, rest) : e));
  return copy;
}

/**
 * A find projection. Plain inclusion/exclusion is done here without touching stored
 * documents; operators ($slice, $elemMatch, positional `.$`, expressions) go to mingo
 * on a deep copy, because mingo's projection edits nested objects in place.
 */
export function compileProjection(projection: Document | undefined, filter: Document = {}): Projector | undefined {
  if (!projection || Object.keys(projection).length === 0) return undefined;
  const fields = Object.keys(projection);
  for (const field of fields) {
    if (field.startsWith('$')) throw badValue(`FieldPath field names may not start with '$'. Consider using $getField or $setField.`);
    if (isPlainObject(projection[field]) && '$meta' in projection[field]) throw unsupported('$meta projection');
  }
  const slices = new Map<string, Slice>();
  for (const field of fields) {
    const slice = topLevelSlice(field, projection[field]);
    if (slice) slices.set(field, slice);
  }
  const simple = fields.every((field) => (isBooleanLike(projection[field]) && !field.endsWith('.$')) || slices.has(field));
  if (!simple) {
    const positional = fields.some((field) => field.endsWith('.$'));
    if (positional) {
      const query = withMingo('projection', () => new Query(toQueryView(filter), mingoOptions()));
      return (doc) =>
        withMingo('projection', () => query.find([cloneDeep(toQueryView(doc))], projection).all()[0] as Document);
    }
    const aggregator = withMingo('projection', () => new Aggregator([{ $project: projection }], mingoOptions()));
    return (doc) => withMingo('projection', () => aggregator.run([cloneDeep(doc)])[0] as Document);
  }
  const includeId = projection._id === undefined ? true : Boolean(projection._id);
  const others = fields.filter((field) => field !== '_id' && !slices.has(field));
  const inclusion = others.some((field) => Boolean(projection[field]));
  const sliced = slicer([...slices]);
  for (const field of others) {
    if (Boolean(projection[field]) !== inclusion) {
      throw new MongoCommandError(
        inclusion ? 31254 : 31253,
        inclusion
          ? `Cannot do exclusion on field ${field} in inclusion projection`
          : `Cannot do inclusion on field ${field} in exclusion projection`,
      );
    }
  }
  const paths = others.map((field) => field.split('.'));
  // A $slice field alone leaves the projection exclusive: every other field stays.
  if (inclusion || (others.length === 0 && slices.size === 0 && projection._id !== undefined && Boolean(projection._id))) {
    const included = [...paths, ...[...slices.keys()].map((field) => [field])];
    return (doc) => {
      const result: Document = {};
      if (includeId && '_id' in doc) result._id = doc._id;
      for (const path of included) mergeInto(result, includePath(doc, path, 0));
      return sliced(result);
    };
  }
  return (doc) => {
    let result = includeId ? doc : excludePath(doc, ['_id']);
    for (const path of paths) result = excludePath(result, path);
    return sliced(result);
  };
}

/** `$slice: n` (first n, or last -n) or `$slice: [skip, limit]` (a negative skip counts from the end). */
type Slice = { skip: number; limit: number } | { last: number };

/**
 * `{ field: { $slice: ... } }` on a top-level field with integer arguments, which the projector
 * applies itself; other forms (dotted paths, a limit that is not positive) go to mingo.
 */
function topLevelSlice(field: string, value: unknown): Slice | undefined {
  if (field.includes('.') || field === '_id' || !isPlainObject(value)) return undefined;
  const keys = Object.keys(value);
  if (keys.length !== 1 || keys[0] !== '$slice') return undefined;
  const argument = value.$slice;
  if (Number.isSafeInteger(argument)) return argument >= 0 ? { skip: 0, limit: argument } : { last: -argument };
  if (Array.isArray(argument) && argument.length === 2 && argument.every((n) => Number.isSafeInteger(n)) && argument[1] > 0) {
    return { skip: argument[0], limit: argument[1] };
  }
  return undefined;
}

/** Copies the document with each array field cut to its $slice (non-arrays stay as they are). */
function slicer(slices: Array<[string, Slice]>): (doc: Document) => Document {
  if (slices.length === 0) return (doc) => doc;
  return (doc) => {
    let result = doc;
    for (const [field, slice] of slices) {
      const value = doc[field];
      if (!Array.isArray(value)) continue;
      if (result === doc) result = { ...doc };
      if ('last' in slice) {
        result[field] = value.slice(Math.max(0, value.length - slice.last));
      } else {
        const start = slice.skip >= 0 ? slice.skip : Math.max(0, value.length + slice.skip);
        result[field] = value.slice(start, start + slice.limit);
      }
    }
    return result;
  };
}

/**
 * The document an upsert starts from: the equality conditions of the query
 * (`{ userId: 'u1', 'a.b': 2 }` -> `{ userId: 'u1', a: { b: 2 } }`), as mongod seeds it.
 */
export function upsertSeed(filter: Document): Document {
  const seed: Document = {};
  const visit = (clause: Document) => {
    for (const key of Object.keys(clause)) {
      const value = clause[key];
      if (key === '$and' && Array.isArray(value)) {
        for (const sub of value) if (isPlainObject(sub)) visit(sub);
        continue;
      }
      if (key === '$or' && Array.isArray(value) && value.length === 1 && isPlainObject(value[0])) {
        visit(value[0]);
        continue;
      }
      if (key.startsWith('$')) continue;
      let equal: unknown;
      if (value instanceof RegExp) continue;
      if (isOperatorObject(value)) {
        if (!('$eq' in value)) continue;
        equal = value.$eq;
      } else equal = value;
      setSeedPath(seed, key, cloneDeep(equal));
    }
  };
  visit(filter);
  return seed;
}

function setSeedPath(seed: Document, path: string, value: unknown): void {
  const parts = path.split('.');
  let target = seed;
  for (let i = 0; i < parts.length - 1; i++) {
    const existing = getField(target, parts[i]);
    if (existing === undefined) target = target[parts[i]] = {};
    else if (isPlainObject(existing)) target = existing;
    else throw new MongoCommandError(54, `cannot infer query fields to set, path '${path}' is matched twice`);
  }
  const last = parts[parts.length - 1];
  if (hasField(target, last)) {
    throw new MongoCommandError(54, `cannot infer query fields to set, path '${path}' is matched twice`);
  }
  target[last] = value;
}
