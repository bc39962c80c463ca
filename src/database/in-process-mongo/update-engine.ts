import { Document, Timestamp } from 'bson';
import { Aggregator } from 'mingo/aggregator';
import { Query } from 'mingo/query';
import {
  bsonTypeName,
  canonicalKey,
  cloneDeep,
  compareBson,
  containsExotic,
  formatValue,
  getField,
  hasField,
  isExoticNumber,
  isNumeric,
  isPlainObject,
  toQueryView,
} from './bson-values';
import { isOperatorObject, mingoOptions, withMingo } from './mingo-context';
import { badValue, ErrorCode, failedToParse, MongoCommandError, typeMismatch, unsupported } from './mongo-error';
import { addNumbers, bitwise, multiplyNumbers, zeroLike } from './numeric';

/**
 * MongoDB update semantics, written here rather than taken from mingo's updater, which
 * ignores $each/$slice on a missing array, has no $setOnInsert, silently skips paths it
 * cannot create and mutates documents in place. Updates are copy-on-write: only the
 * containers along modified paths are copied, the stored document is never touched,
 * so a failed update (e.g. a duplicate key) leaves nothing behind.
 */

export interface ApplyContext {
  /** The update runs on a new document created by an upsert ($setOnInsert applies). */
  isInsert: boolean;
  now: Date;
}

export interface UpdateOutcome {
  doc: Document;
  modified: boolean;
  /** The new document may hold int64/decimal/typed-double values (see bson-values). */
  exotic: boolean;
}

export interface CompiledUpdate {
  readonly kind: 'replacement' | 'operators' | 'pipeline';
  apply(original: Document, context: ApplyContext): UpdateOutcome;
}

export interface UpdateOptions {
  arrayFilters?: unknown;
  /** The query that selected the document, for the positional `$` operator. */
  filter: Document;
}

const PIPELINE_UPDATE_STAGES = new Set(['$addFields', '$set', '$project', '$unset', '$replaceRoot', '$replaceWith']);

export function compileUpdate(update: unknown, options: UpdateOptions): CompiledUpdate {
  if (Array.isArray(update)) return compilePipelineUpdate(update);
  if (!isPlainObject(update)) throw failedToParse('Update argument must be either an object or an array');
  const keys = Object.keys(update);
  if (keys.length > 0 && keys[0].startsWith('$')) return compileOperatorUpdate(update, options);
  return compileReplacement(update);
}

/** Equal values of the same BSON types, field order included (what makes an update a no-op). */
export function identical(a: unknown, b: unknown): boolean {
  if (typeof a === 'number' && typeof b === 'number') return Object.is(a, b);
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (bsonTypeName(a) !== bsonTypeName(b)) return false;
  if (Array.isArray(a)) return a.length === (b as unknown[]).length && a.every((v, i) => identical(v, (b as unknown[])[i]));
  if (isPlainObject(a)) {
    const keysA = Object.keys(a);
    const keysB = Object.keys(b as Document);
    return keysA.length === keysB.length && keysA.every((k, i) => k === keysB[i] && identical(a[k], (b as Document)[k]));
  }
  return canonicalKey(a) === canonicalKey(b);
}

function checkIdUnchanged(original: Document, updated: Document): void {
  if (!('_id' in original)) return;
  if (!identical(original._id, updated._id)) {
    throw new MongoCommandError(
      ErrorCode.ImmutableField,
      `Performing an update on the path '_id' would modify the immutable field '_id'`,
    );
  }
}

function withIdFirst(doc: Document): Document {
  if (!('_id' in doc) || Object.keys(doc)[0] === '_id') return doc;
  const { _id, ...rest } = doc;
  return { _id, ...rest };
}

function compileReplacement(replacement: Document): CompiledUpdate {
  for (const key of Object.keys(replacement)) {
    if (key.startsWith('$')) {
      throw new MongoCommandError(
        ErrorCode.DollarPrefixedFieldName,
        `The dollar ($) prefixed field '${key}' in '${key}' is not allowed in the context of an update's replacement document. Consider using an aggregation pipeline with $replaceWith.`,
      );
    }
  }
  const exotic = containsExotic(replacement);
  return {
    kind: 'replacement',
    apply(original) {
      if ('_id' in original && '_id' in replacement && !identical(original._id, replacement._id)) {
        throw new MongoCommandError(
          ErrorCode.ImmutableField,
          `After applying the update, the (immutable) field '_id' was found to have been altered to _id: ${formatValue(replacement._id)}`,
        );
      }
      const { _id: _ignored, ...fields } = replacement;
      const doc = '_id' in original ? { _id: original._id, ...fields } : withIdFirst({ ...replacement });
      return { doc, modified: !identical(original, doc), exotic };
    },
  };
}

function compilePipelineUpdate(stages: unknown[]): CompiledUpdate {
  for (const stage of stages) {
    if (!isPlainObject(stage) || Object.keys(stage).length !== 1) {
      throw new MongoCommandError(40323, 'A pipeline stage specification object must contain exactly one field.');
    }
    const name = Object.keys(stage)[0];
    if (!PIPELINE_UPDATE_STAGES.has(name)) {
      throw badValue(`${name} is not allowed to be used within an update`);
    }
  }
  const aggregator = withMingo('update pipeline', () => new Aggregator(stages as Document[], mingoOptions()));
  return {
    kind: 'pipeline',
    apply(original) {
      const [result] = withMingo('update pipeline', () => aggregator.run([cloneDeep(toQueryView(original))]));
      if (!isPlainObject(result)) throw badValue('update pipeline must produce a document');
      const doc = withIdFirst('_id' in result || !('_id' in original) ? result : { _id: original._id, ...result });
      checkIdUnchanged(original, doc);
      return { doc, modified: !identical(original, doc), exotic: containsExotic(doc) };
    },
  };
}

interface PushArg {
  each: unknown[];
  slice?: number;
  sort?: 1 | -1 | Document;
  position?: number;
}

interface UpdateEntry {
  op: string;
  path: string;
  parts: string[];
  arg: unknown;
  positional: boolean;
  /** The argument holds int64/decimal/typed-double values that would be stored. */
  exotic: boolean;
  /** For ordering: which path components are array indexes. */
  numeric: boolean[];
}

type ArgValidator = (arg: unknown, path: string) => unknown;

const numericArg =
  (verb: string): ArgValidator =>
  (arg, path) => {
    if (!isNumeric(arg)) {
      throw typeMismatch(`Cannot ${verb} with non-numeric argument: {${path}: ${formatValue(arg)}}`);
    }
    return arg;
  };

function validatePush(arg: unknown): PushArg {
  if (!isPlainObject(arg) || !('$each' in arg)) {
    if (isOperatorObject(arg)) throw badValue(`Unrecognized clause in $push: ${Object.keys(arg)[0]}`);
    return { each: [arg] };
  }
  const result: PushArg = { each: [] };
  for (const key of Object.keys(arg)) {
    const value = arg[key];
    switch (key) {
      case '$each':
        if (!Array.isArray(value)) {
          throw badValue(`The argument to $each in $push must be an array but it was of type: ${bsonTypeName(value)}`);
        }
        result.each = value;
        break;
      case '$slice':
        if (typeof value !== 'number' || !Number.isInteger(value)) {
          throw badValue(`The value for $slice must be an integer value but was given type: ${bsonTypeName(value)}`);
        }
        result.slice = value;
        break;
      case '$position':
        if (typeof value !== 'number' || !Number.isInteger(value)) {
          throw badValue(`The value for $position must be an integer value, not of type: ${bsonTypeName(value)}`);
        }
        result.position = value;
        break;
      case '$sort':
        if (value !== 1 && value !== -1) {
          if (!isPlainObject(value) || Object.keys(value).length === 0) {
            throw badValue('The $sort is invalid: use 1/-1 to sort the whole element, or {field:1/-1} to sort embedded fields');
          }
          for (const field of Object.keys(value)) {
            if (value[field] !== 1 && value[field] !== -1) throw badValue('The $sort element value must be either 1 or -1');
          }
        }
        result.sort = value as PushArg['sort'];
        break;
      default:
        throw badValue(`Unrecognized clause in $push: ${key}`);
    }
  }
  return result;
}

function validateAddToSet(arg: unknown): unknown[] {
  if (!isPlainObject(arg) || !('$each' in arg)) {
    if (isOperatorObject(arg)) throw badValue(`Found unexpected fields after $each in $addToSet: ${formatValue(arg)}`);
    return [arg];
  }
  if (Object.keys(arg).length !== 1) throw badValue(`Found unexpected fields after $each in $addToSet: ${formatValue(arg)}`);
  if (!Array.isArray(arg.$each)) {
    throw badValue(`The argument to $each in $addToSet must be an array but it was of type ${bsonTypeName(arg.$each)}`);
  }
  return arg.$each;
}

const VALIDATORS: Record<string, ArgValidator> = {
  $set: (arg) => arg,
  $setOnInsert: (arg) => arg,
  $unset: (arg) => arg,
  $inc: numericArg('increment'),
  $mul: numericArg('multiply'),
  $min: (arg) => arg,
  $max: (arg) => arg,
  $rename: (arg, path) => {
    if (typeof arg !== 'string') {
      throw badValue(`The 'to' field for $rename must be a string: ${path}: ${formatValue(arg)}`);
    }
    return arg;
  },
  $currentDate: (arg, path) => {
    if (typeof arg === 'boolean') return 'date';
    if (isPlainObject(arg) && Object.keys(arg).length === 1 && (arg.$type === 'date' || arg.$type === 'timestamp')) {
      return arg.$type;
    }
    throw badValue(`${path} is not valid type for $currentDate. Please use a boolean ('true') or a $type expression ({$type: 'timestamp/date'}).`);
  },
  $push: validatePush,
  $addToSet: validateAddToSet,
  $pop: (arg) => {
    if (arg !== 1 && arg !== -1) throw failedToParse(`$pop expects 1 or -1, found: ${formatValue(arg)}`);
    return arg;
  },
  $pull: (arg) => arg,
  $pullAll: (arg) => {
    if (!Array.isArray(arg)) throw badValue(`$pullAll requires an array argument but was given a ${bsonTypeName(arg)}`);
    return arg;
  },
  $bit: (arg, path) => {
    if (!isPlainObject(arg) || Object.keys(arg).length !== 1 || !['and', 'or', 'xor'].includes(Object.keys(arg)[0])) {
      throw badValue(`The $bit modifier only supports 'and', 'or', and 'xor', not ${formatValue(arg)} for ${path}`);
    }
    return arg;
  },
};

const POSITIONAL = /^\$(\[[a-zA-Z0-9]*\])?$/;

function validatePath(path: string): string[] {
  if (path === '') throw new MongoCommandError(ErrorCode.EmptyFieldName, "An empty update path is not valid.");
  const parts = path.split('.');
  let positionalCount = 0;
  for (const part of parts) {
    if (part === '') {
      throw new MongoCommandError(
        ErrorCode.EmptyFieldName,
        `The update path '${path}' contains an empty field name, which is not allowed.`,
      );
    }
    if (part === '__proto__') throw unsupported(`the field name '__proto__'`);
    if (part.startsWith('$')) {
      if (!POSITIONAL.test(part)) {
        throw new MongoCommandError(
          ErrorCode.DollarPrefixedFieldName,
          `The dollar ($) prefixed field '${part}' in '${path}' is not valid for storage.`,
        );
      }
      if (part === '$' && ++positionalCount > 1) {
        throw badValue(`Too many positional (i.e. '$') elements found in path '${path}'`);
      }
    }
  }
  if (parts[0].startsWith('$')) {
    throw new MongoCommandError(
      ErrorCode.DollarPrefixedFieldName,
      `The dollar ($) prefixed field '${parts[0]}' in '${path}' is not valid for storage.`,
    );
  }
  return parts;
}

function checkConflicts(entries: Array<{ path: string; parts: string[] }>): void {
  const sorted = [...entries].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  for (let i = 1; i < sorted.length; i++) {
    const previous = sorted[i - 1].parts;
    const current = sorted[i].parts;
    if (previous.length <= current.length && previous.every((part, j) => part === current[j])) {
      throw new MongoCommandError(
        ErrorCode.ConflictingUpdateOperators,
        `Updating the path '${sorted[i].path}' would create a conflict at '${sorted[i - 1].path}'`,
      );
    }
  }
}

function isDigits(part: string): boolean {
  if (part.length === 0) return false;
  for (let i = 0; i < part.length; i++) {
    const c = part.charCodeAt(i);
    if (c < 48 || c > 57) return false;
  }
  return true;
}

/** mongod applies update paths field by field in lexicographic order (numeric for digits). */
function comparePaths(a: UpdateEntry, b: UpdateEntry): number {
  const length = Math.min(a.parts.length, b.parts.length);
  for (let i = 0; i < length; i++) {
    const x = a.parts[i];
    const y = b.parts[i];
    if (x === y) continue;
    if (a.numeric[i] && b.numeric[i]) return Number(x) - Number(y);
    return x < y ? -1 : 1;
  }
  return a.parts.length - b.parts.length;
}

function compileArrayFilters(arrayFilters: unknown): Map<string, Query> {
  const filters = new Map<string, Query>();
  if (arrayFilters === undefined || arrayFilters === null) return filters;
  if (!Array.isArray(arrayFilters)) throw badValue('arrayFilters must be an array');
  for (const filter of arrayFilters) {
    if (!isPlainObject(filter) || Object.keys(filter).length === 0) {
      throw failedToParse('Cannot use an expression without a top-level field name in arrayFilters');
    }
    let identifier: string | undefined;
    for (const key of Object.keys(filter)) {
      const top = key.split('.')[0];
      if (identifier !== undefined && identifier !== top) {
        throw failedToParse(
          `Error parsing array filter :: caused by :: Expected a single top-level field name, found '${identifier}' and '${top}'`,
        );
      }
      identifier = top;
    }
    if (!/^[a-z][a-zA-Z0-9]*$/.test(identifier!)) {
      throw badValue(
        `Error parsing array filter :: caused by :: The top-level field name must be an alphanumeric string beginning with a lowercase letter, found '${identifier}'`,
      );
    }
    if (filters.has(identifier!)) {
      throw failedToParse(`Found multiple array filters with the same top-level field name ${identifier}`);
    }
    filters.set(identifier!, withMingo('arrayFilters', () => new Query(toQueryView(filter), mingoOptions())));
  }
  return filters;
}

function compileOperatorUpdate(update: Document, options: UpdateOptions): CompiledUpdate {
  const entries: UpdateEntry[] = [];
  const conflictPaths: Array<{ path: string; parts: string[] }> = [];
  for (const op of Object.keys(update)) {
    const validate = Object.prototype.hasOwnProperty.call(VALIDATORS, op) ? VALIDATORS[op] : undefined;
    if (!validate) {
      throw failedToParse(
        `Unknown modifier: ${op}. Expected a valid update modifier or pipeline-style update specified as an array`,
      );
    }
    const fields = update[op];
    if (!isPlainObject(fields)) {
      throw failedToParse(
        `Modifiers operate on fields but we found type ${bsonTypeName(fields)} instead. For example: {$mod: {<field>: ...}} not {${op}: ${formatValue(fields)}}`,
      );
    }
    for (const path of Object.keys(fields)) {
      const parts = validatePath(path);
      const arg = validate(fields[path], path);
      const positional = parts.some((part) => part.startsWith('$'));
      const numeric = parts.map(isDigits);
      entries.push({ op, path, parts, arg, positional, exotic: containsExotic(arg), numeric });
      conflictPaths.push({ path, parts });
      if (op === '$rename') {
        const target = arg as string;
        const targetParts = validatePath(target);
        if (positional || targetParts.some((part) => part.startsWith('$'))) {
          throw badValue(`The source and target field for $rename must not contain the positional operator: ${path}`);
        }
        if (target === path) throw badValue(`The source and target field for $rename must differ: ${path}: "${target}"`);
        conflictPaths.push({ path: target, parts: targetParts });
      }
    }
  }
  checkConflicts(conflictPaths);
  entries.sort(comparePaths);

  const arrayFilters = compileArrayFilters(options.arrayFilters);
  const used = new Set<string>();
  for (const entry of entries) {
    for (const part of entry.parts) {
      if (!part.startsWith('$[') || part === '$[]') continue;
      const identifier = part.slice(2, -1);
      if (!arrayFilters.has(identifier)) {
        throw badValue(`No array filter found for identifier '${identifier}' in path '${entry.path}'`);
      }
      used.add(identifier);
    }
  }
  for (const identifier of arrayFilters.keys()) {
    if (!used.has(identifier)) {
      throw failedToParse(`The array filter for identifier '${identifier}' was not used in the update ${formatValue(update)}`);
    }
  }

  return {
    kind: 'operators',
    apply(original, context) {
      const writer = new DocumentWriter(original);
      const positional = new PositionalResolver(original, options.filter, arrayFilters, context.isInsert);
      for (const entry of entries) {
        if (entry.op === '$setOnInsert' && !context.isInsert) continue;
        const targets = entry.positional ? positional.expand(entry.parts, writer) : [entry.parts];
        for (const parts of targets) APPLIERS[entry.op](writer, parts, entry, context);
      }
      checkIdUnchanged(original, writer.root);
      return { doc: writer.root, modified: writer.modified, exotic: writer.exotic };
    },
  };
}

/** Resolves `$`, `$[]` and `$[id]` path components against one document. */
class PositionalResolver {
  private firstMatch = new Map<string, number>();

  constructor(
    private readonly original: Document,
    private readonly filter: Document,
    private readonly arrayFilters: Map<string, Query>,
    private readonly isInsert: boolean,
  ) {}

  expand(parts: string[], writer: DocumentWriter): string[][] {
    let results: string[][] = [[]];
    for (const part of parts) {
      if (!part.startsWith('$')) {
        for (const result of results) result.push(part);
        continue;
      }
      const next: string[][] = [];
      for (const prefix of results) {
        if (part === '$') {
          next.push([...prefix, String(this.positionalIndex(prefix))]);
          continue;
        }
        const array = writer.get(prefix);
        if (!Array.isArray(array)) {
          throw badValue(`The path '${prefix.join('.')}' must exist in the document in order to apply array updates.`);
        }
        const identifier = part.slice(2, -1);
        const query = identifier ? this.arrayFilters.get(identifier) : undefined;
        array.forEach((element, i) => {
          const matches = !query || withMingo('arrayFilters', () => query.test({ [identifier]: toQueryView(element) }));
          if (matches) next.push([...prefix, String(i)]);
        });
      }
      results = next;
    }
    return results;
  }

  /** Index of the first element of the array at `prefix` that the query matched. */
  private positionalIndex(prefix: string[]): number {
    const path = prefix.join('.');
    const cached = this.firstMatch.get(path);
    if (cached !== undefined) return cached;
    const notFound = () => badValue('The positional operator did not find the match needed from the query.');
    if (this.isInsert) throw notFound();
    const conditions: Document = {};
    const visit = (clause: Document) => {
      for (const key of Object.keys(clause)) {
        if (key === '$and' && Array.isArray(clause[key])) clause[key].forEach((sub: Document) => visit(sub));
        else if (key === path || key.startsWith(path + '.')) conditions[key] = clause[key];
      }
    };
    visit(this.filter);
    if (Object.keys(conditions).length === 0) throw notFound();
    const array = getPath(toQueryView(this.original), prefix);
    if (!Array.isArray(array)) throw notFound();
    const query = withMingo('positional operator', () => new Query(conditions, mingoOptions()));
    const index = array.findIndex((element) => {
      const probe: Document = {};
      let target = probe;
      prefix.forEach((part, i) => (target = target[part] = i === prefix.length - 1 ? [element] : {}));
      return withMingo('positional operator', () => query.test(probe));
    });
    if (index === -1) throw notFound();
    this.firstMatch.set(path, index);
    return index;
  }
}

function getPath(doc: unknown, parts: string[]): unknown {
  let value = doc;
  for (const part of parts) {
    if (Array.isArray(value)) value = isDigits(part) ? value[Number(part)] : undefined;
    else if (isPlainObject(value)) value = getField(value, part);
    else return undefined;
  }
  return value;
}

type Container = Document | unknown[];

/** Copy-on-write access to one document being updated. */
class DocumentWriter {
  readonly root: Document;
  modified = false;
  exotic = false;
  private readonly owned = new WeakSet<object>();

  constructor(private readonly original: Document) {
    this.root = { ...original };
    this.owned.add(this.root);
  }

  get(parts: string[]): unknown {
    return getPath(this.root, parts);
  }

  private describeId(): string {
    return `{_id: ${formatValue(this.original._id)}}`;
  }

  private own(parent: Container, key: string | number, child: Container): Container {
    if (this.owned.has(child)) return child;
    const copy = Array.isArray(child) ? child.slice() : { ...child };
    this.owned.add(copy);
    (parent as Document)[key] = copy;
    return copy;
  }

  /** The container that holds the last path component, created (or copied) along the way. */
  parentFor(parts: string[], create: true): { parent: Container; key: string };
  parentFor(parts: string[], create: false): { parent: Container; key: string } | undefined;
  parentFor(parts: string[], create: boolean): { parent: Container; key: string } | undefined {
    let current: Container = this.root;
    for (let i = 0; i < parts.length - 1; i++) {
      const part = parts[i];
      let key: string | number = part;
      if (Array.isArray(current)) {
        if (!isDigits(part)) {
          if (!create) return undefined;
          throw this.cannotCreate(part, parts.slice(0, i), current);
        }
        key = Number(part);
      }
      const child = Array.isArray(current) ? current[key as number] : getField(current, key as string);
      if (child === undefined) {
        if (!create) return undefined;
        const created: Document = {};
        this.owned.add(created);
        this.assign(current, key, created);
        current = created;
      } else if (isPlainObject(child) || Array.isArray(child)) {
        current = this.own(current, key, child as Container);
      } else {
        if (!create) return undefined;
        throw this.cannotCreate(parts[i + 1], parts.slice(0, i + 1), child);
      }
    }
    const last = parts[parts.length - 1];
    if (Array.isArray(current) && !isDigits(last)) {
      if (!create) return undefined;
      throw this.cannotCreate(last, parts.slice(0, -1), current);
    }
    return { parent: current, key: last };
  }

  private cannotCreate(field: string, at: string[], element: unknown): MongoCommandError {
    const where = at.length ? `{${at[at.length - 1]}: ${formatValue(element)}}` : formatValue(element);
    return new MongoCommandError(ErrorCode.PathNotViable, `Cannot create field '${field}' in element ${where}`);
  }

  private assign(parent: Container, key: string | number, value: unknown): void {
    if (Array.isArray(parent)) {
      const index = Number(key);
      while (parent.length < index) parent.push(null);
      parent[index] = value;
    } else parent[key as string] = value;
  }

  /** Sets a value; `exotic` says whether it holds int64/decimal/typed-double values. */
  set(parts: string[], value: unknown, exotic: boolean): void {
    const { parent, key } = this.parentFor(parts, true);
    const current = Array.isArray(parent) ? parent[Number(key)] : getField(parent, key);
    const exists = Array.isArray(parent) ? Number(key) < parent.length : hasField(parent, key);
    if (exists && identical(current, value)) return;
    this.assign(parent, key, value);
    this.modified = true;
    if (exotic) this.exotic = true;
  }

  unset(parts: string[]): void {
    const location = this.parentFor(parts, false);
    if (!location) return;
    const { parent, key } = location;
    if (Array.isArray(parent)) {
      const index = Number(key);
      if (index >= parent.length || parent[index] === null) return;
      parent[index] = null;
    } else {
      if (!hasField(parent, key)) return;
      delete (parent as Document)[key];
    }
    this.modified = true;
  }

  /** The array at `parts` for an array operator, or undefined when the field is missing. */
  arrayAt(parts: string[], op: string): unknown[] | undefined {
    const value = this.get(parts);
    if (value === undefined) return undefined;
    if (!Array.isArray(value)) {
      const path = parts.join('.');
      if (op === '$pop') {
        throw typeMismatch(`Path '${path}' contains an element of non-array type '${bsonTypeName(value)}'`);
      }
      if (op === '$addToSet') {
        throw badValue(`Cannot apply $addToSet to non-array field. Field named '${path}' has non-array type ${bsonTypeName(value)}`);
      }
      if (op === '$pull' || op === '$pullAll') throw badValue('Cannot apply $pull to a non-array value');
      throw badValue(
        `The field '${path}' must be an array but is of type ${bsonTypeName(value)} in document ${this.describeId()}`,
      );
    }
    return value;
  }

  numericAt(parts: string[], op: string): unknown {
    const value = this.get(parts);
    if (value !== undefined && !isNumeric(value)) {
      throw typeMismatch(
        `Cannot apply ${op} to a value of non-numeric type. ${this.describeId()} has the field '${parts[parts.length - 1]}' of non-numeric type ${bsonTypeName(value)}`,
      );
    }
    return value;
  }

  checkNotThroughArray(parts: string[], role: string): void {
    let value: unknown = this.root;
    for (let i = 0; i < parts.length - 1; i++) {
      value = isPlainObject(value) ? getField(value, parts[i]) : undefined;
      if (Array.isArray(value)) {
        throw badValue(
          `The ${role} field cannot be an array element, '${parts.join('.')}' in doc with _id: ${formatValue(this.original._id)} has an array field called '${parts[i]}'`,
        );
      }
    }
  }
}

type Applier = (writer: DocumentWriter, parts: string[], entry: UpdateEntry, context: ApplyContext) => void;

function sortPushed(values: unknown[], sort: 1 | -1 | Document): void {
  if (sort === 1 || sort === -1) {
    values.sort((a, b) => compareBson(a, b) * sort);
    return;
  }
  const fields = Object.keys(sort).map((field) => [field.split('.'), sort[field] as number] as const);
  values.sort((a, b) => {
    for (const [path, direction] of fields) {
      const order = compareBson(getPath(a, path), getPath(b, path));
      if (order) return order * direction;
    }
    return 0;
  });
}

function pullMatcher(condition: unknown): (element: unknown) => boolean {
  if (isPlainObject(condition)) {
    if (isOperatorObject(condition) && !Object.keys(condition).some((k) => k === '$and' || k === '$or' || k === '$nor')) {
      const query = withMingo('$pull', () => new Query({ v: toQueryView(condition) }, mingoOptions()));
      return (element) => withMingo('$pull', () => query.test({ v: toQueryView(element) }));
    }
    const query = withMingo('$pull', () => new Query(toQueryView(condition), mingoOptions()));
    return (element) => isPlainObject(element) && withMingo('$pull', () => query.test(toQueryView(element)));
  }
  const key = canonicalKey(condition);
  return (element) => canonicalKey(element) === key;
}

const APPLIERS: Record<string, Applier> = {
  $set: (writer, parts, { arg, exotic }) => writer.set(parts, arg, exotic),
  $setOnInsert: (writer, parts, { arg, exotic }, context) => {
    if (context.isInsert) writer.set(parts, arg, exotic);
  },
  $unset: (writer, parts) => writer.unset(parts),
  $inc: (writer, parts, { arg }) => {
    const current = writer.numericAt(parts, '$inc');
    const result = current === undefined ? arg : addNumbers(current, arg);
    writer.set(parts, result, isExoticNumber(result));
  },
  $mul: (writer, parts, { arg }) => {
    const current = writer.numericAt(parts, '$mul');
    const result = current === undefined ? zeroLike(arg) : multiplyNumbers(current, arg);
    writer.set(parts, result, isExoticNumber(result));
  },
  $min: (writer, parts, { arg, exotic }) => {
    const current = writer.get(parts);
    if (current === undefined || compareBson(arg, current) < 0) writer.set(parts, arg, exotic);
  },
  $max: (writer, parts, { arg, exotic }) => {
    const current = writer.get(parts);
    if (current === undefined || compareBson(arg, current) > 0) writer.set(parts, arg, exotic);
  },
  $currentDate: (writer, parts, { arg }, context) => {
    const millis = context.now.getTime();
    writer.set(
      parts,
      arg === 'timestamp' ? new Timestamp({ t: Math.floor(millis / 1000), i: 1 }) : new Date(millis),
      false,
    );
  },
  $rename: (writer, parts, { arg }) => {
    writer.checkNotThroughArray(parts, 'source');
    const value = writer.get(parts);
    if (value === undefined) return;
    const targetParts = (arg as string).split('.');
    writer.checkNotThroughArray(targetParts, 'destination');
    writer.unset(parts);
    // The value was already part of this document, so its exotic flag is already set.
    writer.set(targetParts, value, false);
  },
  $push: (writer, parts, { arg, exotic }) => {
    const { each, slice, sort, position } = arg as PushArg;
    const result = (writer.arrayAt(parts, '$push') ?? []).slice();
    let at = position === undefined ? result.length : position < 0 ? Math.max(0, result.length + position) : position;
    at = Math.min(at, result.length);
    result.splice(at, 0, ...each);
    if (sort !== undefined) sortPushed(result, sort);
    const sliced =
      slice === undefined ? result : slice >= 0 ? result.slice(0, slice) : result.slice(Math.max(0, result.length + slice));
    writer.set(parts, sliced, exotic);
  },
  $addToSet: (writer, parts, { arg, exotic }) => {
    const current = writer.arrayAt(parts, '$addToSet') ?? [];
    const seen = new Set(current.map(canonicalKey));
    const result = current.slice();
    for (const value of arg as unknown[]) {
      const key = canonicalKey(value);
      if (!seen.has(key)) {
        seen.add(key);
        result.push(value);
      }
    }
    writer.set(parts, result, exotic);
  },
  $pop: (writer, parts, { arg }) => {
    const current = writer.arrayAt(parts, '$pop');
    if (!current || current.length === 0) return;
    writer.set(parts, arg === 1 ? current.slice(0, -1) : current.slice(1), false);
  },
  $pull: (writer, parts, { arg }) => {
    const current = writer.arrayAt(parts, '$pull');
    if (!current) return;
    const matches = pullMatcher(arg);
    const kept = current.filter((element) => !matches(element));
    if (kept.length !== current.length) writer.set(parts, kept, false);
  },
  $pullAll: (writer, parts, { arg }) => {
    const current = writer.arrayAt(parts, '$pullAll');
    if (!current) return;
    const remove = new Set((arg as unknown[]).map(canonicalKey));
    const kept = current.filter((element) => !remove.has(canonicalKey(element)));
    if (kept.length !== current.length) writer.set(parts, kept, false);
  },
  $bit: (writer, parts, { arg }) => {
    const [operation] = Object.keys(arg as Document);
    const result = bitwise(writer.get(parts), operation, (arg as Document)[operation]);
    writer.set(parts, result, isExoticNumber(result));
  },
};
