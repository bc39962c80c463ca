import { Document } from 'bson';

/** Server error codes used by the in-process server, with mongod's code names. */
export const ErrorCode = {
  InternalError: 1,
  BadValue: 2,
  FailedToParse: 9,
  Unauthorized: 13,
  TypeMismatch: 14,
  IllegalOperation: 20,
  IndexNotFound: 27,
  PathNotViable: 28,
  ConflictingUpdateOperators: 40,
  CursorNotFound: 43,
  NamespaceExists: 48,
  DollarPrefixedFieldName: 52,
  InvalidIdField: 53,
  EmptyFieldName: 56,
  CommandNotFound: 59,
  ImmutableField: 66,
  CannotCreateIndex: 67,
  InvalidOptions: 72,
  InvalidNamespace: 73,
  IndexOptionsConflict: 85,
  IndexKeySpecsConflict: 86,
  CannotIndexParallelArrays: 171,
  NoSuchTransaction: 251,
  UnsupportedOpQueryCommand: 352,
  InvalidPipelineOperator: 168,
  BSONObjectTooLarge: 10334,
  DuplicateKey: 11000,
  UnknownField: 40415,
  NamespaceNotFound: 26,
} as const;

const CODE_NAMES: Record<number, string> = {
  ...Object.fromEntries(Object.entries(ErrorCode).map(([name, code]) => [code, name])),
  [ErrorCode.UnknownField]: 'Location40415',
};

export function codeNameOf(code: number): string {
  return CODE_NAMES[code] ?? `Location${code}`;
}

/**
 * An error reported to the client as `{ ok: 0, errmsg, code, codeName, ...extra }`,
 * the shape mongod uses, so the driver raises a MongoServerError with the same fields.
 */
export class MongoCommandError extends Error {
  constructor(
    readonly code: number,
    message: string,
    readonly extra: Document = {},
  ) {
    super(message);
    this.name = 'MongoCommandError';
  }

  get codeName(): string {
    return codeNameOf(this.code);
  }

  toReply(): Document {
    return { ok: 0, errmsg: this.message, code: this.code, codeName: this.codeName, ...this.extra };
  }

  /** The entry of a `writeErrors` array for the statement at `index`. */
  toWriteError(index: number): Document {
    return { index, code: this.code, errmsg: this.message, ...this.extra };
  }
}

export const badValue = (message: string) => new MongoCommandError(ErrorCode.BadValue, message);
export const failedToParse = (message: string) => new MongoCommandError(ErrorCode.FailedToParse, message);
export const typeMismatch = (message: string) => new MongoCommandError(ErrorCode.TypeMismatch, message);

/** Something real MongoDB supports that this server deliberately does not. */
export const unsupported = (what: string) =>
  new MongoCommandError(ErrorCode.BadValue, `${what} is not supported by the in-process MongoDB server`);
