import { Binary, BSON } from 'mongodb';
import { toNumbers } from '../common/float64-bytes';
import { yieldWhenSpent } from '../common/turn-budget';

/** Arrays of at least this many numbers are stored as one float64 buffer. */
const PACKED_MIN_LENGTH = 16;
const PACKED = '_float64';

/**
 * Room left under MongoDB's 16 MiB document limit for the record's other fields. With vectors packed,
 * 256 answers of up to 7,600 dimensions fit (3,072-dimension ones take ~6.3 MB).
 */
export const MAX_STORED_BODY_BYTES = 15 * 1024 * 1024;

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (value === null || typeof value !== 'object') return false;
  const prototype = Object.getPrototypeOf(value) as object | null;
  return prototype === Object.prototype || prototype === null;
}

function isNumberArray(value: unknown[]): value is number[] {
  if (value.length < PACKED_MIN_LENGTH) return false;
  for (const item of value) if (typeof item !== 'number') return false;
  return true;
}

/**
 * A response body as an idempotency record keeps it: long arrays of numbers (embedding vectors)
 * become `{ _float64: <binData> }`, exact (a JS number is a float64) and serialised as one buffer;
 * as BSON arrays, 256 vectors of 1,536 doubles take 50-130 ms to write and as long to read back,
 * on the event loop. A JSON body never holds binData, so the marker cannot be confused with data.
 * Converting 256 x 3,072 numbers takes tens of ms itself, so both directions hand the event loop
 * back between arrays.
 */
export async function packBody(value: unknown): Promise<unknown> {
  if (Array.isArray(value)) {
    if (isNumberArray(value)) {
      await yieldWhenSpent();
      return { [PACKED]: new Binary(Buffer.from(new Float64Array(value).buffer)) };
    }
    const packed: unknown[] = [];
    for (const item of value) packed.push(await packBody(item));
    return packed;
  }
  if (isPlainObject(value)) {
    const packed: Record<string, unknown> = {};
    for (const [key, item] of Object.entries(value)) packed[key] = await packBody(item);
    return packed;
  }
  return value;
}

export async function unpackBody(value: unknown): Promise<unknown> {
  if (Array.isArray(value)) {
    const unpacked: unknown[] = [];
    for (const item of value) unpacked.push(await unpackBody(item));
    return unpacked;
  }
  if (isPlainObject(value)) {
    const packed = value[PACKED];
    if (packed instanceof Binary && Object.keys(value).length === 1) {
      await yieldWhenSpent();
      return toNumbers(packed.buffer);
    }
    const unpacked: Record<string, unknown> = {};
    for (const [key, item] of Object.entries(value)) unpacked[key] = await unpackBody(item);
    return unpacked;
  }
  return value;
}

/** Bytes the packed body takes in a BSON document. */
export function storedSize(packed: unknown): number {
  return BSON.calculateObjectSize({ body: packed });
}
