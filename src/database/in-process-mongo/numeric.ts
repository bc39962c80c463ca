import { Double, Long } from 'bson';
import { bsonTypeTag, isInt32, toNumber } from './bson-values';
import { badValue, unsupported } from './mongo-error';

/**
 * Arithmetic for $inc and $mul with mongod's type rules: int op int stays int and
 * widens to long on overflow, anything with a double is a double, long overflow fails.
 * Stored form (see bson-values): a JS number is an int32 when it is an int32-sized
 * integer and a double otherwise; other doubles are `Double`, int64 is `Long`.
 */

export type NumericKind = 'int' | 'long' | 'double' | 'decimal';

export function numericKind(value: unknown): NumericKind | undefined {
  if (typeof value === 'number') return isInt32(value) ? 'int' : 'double';
  switch (bsonTypeTag(value)) {
    case 'Long':
      return 'long';
    case 'Double':
      return 'double';
    case 'Int32':
      return 'int';
    case 'Decimal128':
      return 'decimal';
  }
  return undefined;
}

/** A double result in stored form: integer values in int32 range stay typed as double. */
export const storedDouble = (n: number): number | Double => (isInt32(n) ? new Double(n) : n);

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

function toBigInt(value: unknown): bigint {
  return bsonTypeTag(value) === 'Long' ? (value as Long).toBigInt() : BigInt(toNumber(value));
}

function integerResult(result: bigint, describe: () => string): number | Long {
  if (result < INT64_MIN || result > INT64_MAX) throw badValue(describe());
  if (result >= -2147483648n && result <= 2147483647n) return Number(result);
  return Long.fromBigInt(result);
}

function combine(
  op: '$inc' | '$mul',
  current: unknown,
  operand: unknown,
  asDouble: (a: number, b: number) => number,
  asInteger: (a: bigint, b: bigint) => bigint,
): unknown {
  if (typeof current === 'number' && typeof operand === 'number') {
    if (isInt32(current) && isInt32(operand)) {
      // Sums and products of int32 values are exact doubles while they stay below 2^53.
      const exact = asDouble(current, operand);
      if (isInt32(exact)) return exact;
      if (Number.isSafeInteger(exact)) return Long.fromNumber(exact);
    } else return storedDouble(asDouble(current, operand));
  }
  const kinds = [numericKind(current), numericKind(operand)];
  if (kinds.includes('decimal')) throw unsupported(`${op} on decimal128 values`);
  if (kinds.includes('double')) return storedDouble(asDouble(toNumber(current), toNumber(operand)));
  const result = asInteger(toBigInt(current), toBigInt(operand));
  const keepLong = kinds.includes('long');
  const value = integerResult(
    result,
    () => `Failed to apply ${op} operations to current value (${String(toBigInt(current))}): integer overflow`,
  );
  return keepLong && typeof value === 'number' ? Long.fromNumber(value) : value;
}

export const addNumbers = (current: unknown, operand: unknown) =>
  combine('$inc', current, operand, (a, b) => a + b, (a, b) => a + b);

export const multiplyNumbers = (current: unknown, operand: unknown) =>
  combine('$mul', current, operand, (a, b) => a * b, (a, b) => a * b);

/** What `$mul` stores into a missing field: zero of the multiplier's type. */
export function zeroLike(operand: unknown): unknown {
  switch (numericKind(operand)) {
    case 'long':
      return Long.ZERO;
    case 'double':
      return new Double(0);
    case 'decimal':
      throw unsupported('$mul on decimal128 values');
  }
  return 0;
}

export function bitwise(current: unknown, operation: string, operand: unknown): unknown {
  const kinds = [numericKind(current ?? 0), numericKind(operand)];
  if (!kinds.every((kind) => kind === 'int' || kind === 'long')) {
    throw badValue('$bit is only supported on int and long values');
  }
  const a = toBigInt(current ?? 0);
  const b = toBigInt(operand);
  const result = operation === 'and' ? a & b : operation === 'or' ? a | b : a ^ b;
  const value = integerResult(BigInt.asIntN(64, result), () => '$bit overflow');
  return kinds.includes('long') && typeof value === 'number' ? Long.fromNumber(value) : value;
}
