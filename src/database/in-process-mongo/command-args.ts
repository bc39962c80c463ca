import { Document, Long } from 'bson';
import { bsonTypeName, bsonTypeTag, isPlainObject, toNumber } from './bson-values';
import { MemoryCollection } from './memory-collection';
import { badValue, ErrorCode, MongoCommandError, unsupported } from './mongo-error';
import { validateCollectionName } from './memory-storage';

/** Fields every command may carry; the server accepts and ignores them. */
export const GENERIC_FIELDS = new Set([
  '$db',
  'lsid',
  '$clusterTime',
  'writeConcern',
  'readConcern',
  '$readPreference',
  'apiVersion',
  'apiStrict',
  'apiDeprecationErrors',
  'comment',
  'maxTimeMS',
  '$client',
  'mayBypassWriteBlocking',
]);

/** Reads and checks the fields of one command, with mongod's errors for bad ones. */
export class CommandArgs {
  constructor(
    readonly name: string,
    readonly command: Document,
  ) {}

  /**
   * Fails on a field the command does not know, as mongod's strict command parsers do
   * (`BSON field 'find.foo' is an unknown field.`), and on known options this server
   * does not implement.
   */
  expectOnly(known: readonly string[], unsupportedFields: readonly string[] = []): this {
    const first = Object.keys(this.command)[0];
    for (const field of Object.keys(this.command)) {
      if (field === first || GENERIC_FIELDS.has(field) || known.includes(field)) continue;
      if (unsupportedFields.includes(field)) throw unsupported(`the '${field}' option of ${this.name}`);
      throw new MongoCommandError(ErrorCode.UnknownField, `BSON field '${this.name}.${field}' is an unknown field.`);
    }
    return this;
  }

  private wrongType(field: string, expected: string): MongoCommandError {
    return new MongoCommandError(
      ErrorCode.TypeMismatch,
      `BSON field '${this.name}.${field}' is the wrong type '${bsonTypeName(this.command[field])}', expected type${
        expected.includes(',') ? 's' : ''
      } '${expected}'`,
    );
  }

  has(field: string): boolean {
    return this.command[field] !== undefined && this.command[field] !== null;
  }

  integer(field: string, options: { min?: number } = {}): number | undefined {
    const value = this.command[field];
    if (value === undefined || value === null) return undefined;
    const tag = bsonTypeTag(value);
    if (typeof value !== 'number' && tag !== 'Long' && tag !== 'Double' && tag !== 'Decimal128') {
      throw this.wrongType(field, '[long, int, decimal, double]');
    }
    const n = toNumber(value);
    if (!Number.isInteger(n)) throw badValue(`${field} must be a whole number, not ${n}`);
    if (options.min !== undefined && n < options.min) {
      throw new MongoCommandError(51024, `BSON field '${field}' value must be >= ${options.min}, actual value '${n}'`);
    }
    return n;
  }

  long(field: string): Long {
    const value = this.command[field];
    if (bsonTypeTag(value) === 'Long') return value as Long;
    if (typeof value === 'number' && Number.isInteger(value)) return Long.fromNumber(value);
    throw this.wrongType(field, 'long');
  }

  boolean(field: string): boolean | undefined {
    const value = this.command[field];
    if (value === undefined || value === null) return undefined;
    if (typeof value === 'boolean') return value;
    if (typeof value === 'number') return value !== 0;
    throw this.wrongType(field, 'bool');
  }

  document(field: string): Document | undefined {
    const value = this.command[field];
    if (value === undefined || value === null) return undefined;
    if (!isPlainObject(value)) throw this.wrongType(field, 'object');
    return value;
  }

  array(field: string): unknown[] | undefined {
    const value = this.command[field];
    if (value === undefined || value === null) return undefined;
    if (!Array.isArray(value)) throw this.wrongType(field, 'array');
    return value;
  }

  string(field: string): string | undefined {
    const value = this.command[field];
    if (value === undefined || value === null) return undefined;
    if (typeof value !== 'string') throw this.wrongType(field, 'string');
    return value;
  }

  /** The collection named by the command's first field. */
  collectionName(db: string): string {
    return validateCollectionName(db, this.command[this.name]);
  }
}

/** Only the default (binary) collation is supported. */
export function checkCollation(collation: unknown): void {
  if (collation === undefined || collation === null) return;
  if (isPlainObject(collation) && collation.locale === 'simple' && Object.keys(collation).length === 1) return;
  throw unsupported('collation');
}

/**
 * A hint cannot change results unless it names a sparse or partial index, so it is
 * accepted when it names an existing full index and refused otherwise.
 */
export function checkHint(collection: MemoryCollection | undefined, hint: unknown): void {
  if (hint === undefined || hint === null) return;
  if (typeof hint !== 'string' && !isPlainObject(hint)) throw badValue('hint must be a string or an object');
  if (isPlainObject(hint) && Object.keys(hint).length === 0) return;
  if (isPlainObject(hint) && '$natural' in hint) return;
  if (!collection) return;
  const spec = collection.findIndex(hint as string | Document);
  if (!spec) throw badValue('hint provided does not correspond to an existing index');
  if (spec.sparse || spec.partialFilterExpression) throw unsupported('hinting a sparse or partial index');
}
