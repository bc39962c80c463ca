import { yieldWhenSpent } from './turn-budget';

/** One array element as JSON.stringify writes it inside an array (undefined and functions become null). */
function element(value: unknown): string {
  return JSON.stringify(value) ?? 'null';
}

/**
 * The bytes of JSON.stringify(value) for a plain object or array, built across turns of the event
 * loop: the elements of its array properties (or of the array itself) are serialised one by one,
 * and the event loop is handed back whenever the turn's shared slice (turn-budget.ts) is used up. 256 dense 1536-dimension
 * vectors are ~8 MB of JSON, 100-250 ms for one JSON.stringify call; one vector is under 2 ms.
 */
export async function stringifyInSlices(value: unknown): Promise<Buffer> {
  const parts: Buffer[] = [];
  const emit = async (text: string) => {
    parts.push(Buffer.from(text));
    await yieldWhenSpent();
  };
  const emitArray = async (items: readonly unknown[]) => {
    await emit('[');
    for (let index = 0; index < items.length; index++) await emit((index > 0 ? ',' : '') + element(items[index]));
    await emit(']');
  };

  if (Array.isArray(value)) {
    await emitArray(value);
  } else if (isPlainObject(value)) {
    let first = true;
    for (const [key, property] of Object.entries(value)) {
      const head = `${first ? '{' : ','}${JSON.stringify(key)}:`;
      if (Array.isArray(property)) {
        await emit(head);
        await emitArray(property);
      } else {
        const text = JSON.stringify(property);
        // JSON.stringify leaves out properties whose value has no JSON form (undefined, functions).
        if (text === undefined) continue;
        await emit(head + text);
      }
      first = false;
    }
    await emit(first ? '{}' : '}');
  } else {
    await emit(JSON.stringify(value) ?? 'null');
  }
  return joinInSlices(parts);
}

/** Buffer.concat across turns: copying 16 MB of parts into one buffer took 25 ms of CPU in one call. */
async function joinInSlices(parts: readonly Buffer[]): Promise<Buffer> {
  const joined = Buffer.allocUnsafe(parts.reduce((total, part) => total + part.length, 0));
  let offset = 0;
  for (const part of parts) {
    offset += part.copy(joined, offset);
    await yieldWhenSpent();
  }
  return joined;
}

/** An object JSON.stringify would write property by property (no toJSON of its own). */
function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (value === null || typeof value !== 'object') return false;
  const prototype = Object.getPrototypeOf(value) as object | null;
  return (prototype === Object.prototype || prototype === null) && typeof (value as { toJSON?: unknown }).toJSON !== 'function';
}

/** Shorter JSON is parsed in one JSON.parse call (~2 ms for 256 KiB). */
export const SLICED_PARSE_MIN_CHARS = 256 * 1024;

/**
 * JSON.parse(text), across turns of the event loop for a long text whose top level is an object:
 * each element of its array properties (the `data` of an embeddings answer) and each other
 * property is parsed by a JSON.parse call of its own, found by a scan that skips strings. 64
 * vectors of 3,072 floats are ~4 MB of JSON, 25-45 ms for one JSON.parse call. Malformed JSON
 * throws a SyntaxError, as JSON.parse does.
 */
export async function parseInSlices(text: string): Promise<unknown> {
  if (text.length < SLICED_PARSE_MIN_CHARS) return JSON.parse(text);
  let at = skipSpace(text, 0);
  if (text[at] !== '{') return JSON.parse(text);
  const result: Record<string, unknown> = {};
  at = skipSpace(text, at + 1);
  if (text[at] === '}') return JSON.parse(text);
  for (;;) {
    if (text[at] !== '"') throw unexpected(text, at);
    const keyEnd = endOfValue(text, at);
    const key = JSON.parse(text.slice(at, keyEnd)) as string;
    at = skipSpace(text, keyEnd);
    if (text[at] !== ':') throw unexpected(text, at);
    at = skipSpace(text, at + 1);
    let value: unknown;
    if (text[at] === '[') {
      const items: unknown[] = [];
      at = skipSpace(text, at + 1);
      if (text[at] === ']') {
        at++;
      } else {
        for (;;) {
          const end = endOfValue(text, at);
          items.push(JSON.parse(text.slice(at, end)));
          await yieldWhenSpent();
          at = skipSpace(text, end);
          if (text[at] === ',') {
            at = skipSpace(text, at + 1);
            continue;
          }
          if (text[at] !== ']') throw unexpected(text, at);
          at++;
          break;
        }
      }
      value = items;
    } else {
      const end = endOfValue(text, at);
      value = JSON.parse(text.slice(at, end));
      await yieldWhenSpent();
      at = end;
    }
    // As JSON.parse does: an own property even for "__proto__", the last of repeated keys winning.
    Object.defineProperty(result, key, { value, enumerable: true, writable: true, configurable: true });
    at = skipSpace(text, at);
    if (text[at] === ',') {
      at = skipSpace(text, at + 1);
      continue;
    }
    if (text[at] !== '}') throw unexpected(text, at);
    break;
  }
  if (skipSpace(text, at + 1) !== text.length) throw unexpected(text, skipSpace(text, at + 1));
  return result;
}

function skipSpace(text: string, at: number): number {
  for (; at < text.length; at++) {
    const code = text.charCodeAt(at);
    if (code !== 0x20 && code !== 0x0a && code !== 0x0d && code !== 0x09) break;
  }
  return at;
}

/** Where the JSON value starting at `start` ends (its content is left for JSON.parse to check). */
function endOfValue(text: string, start: number): number {
  let depth = 0;
  let inString = false;
  for (let at = start; at < text.length; at++) {
    const code = text.charCodeAt(at);
    if (inString) {
      if (code === 0x5c) at++;
      else if (code === 0x22) {
        inString = false;
        if (depth === 0) return at + 1;
      }
    } else if (code === 0x22) {
      inString = true;
    } else if (code === 0x7b || code === 0x5b) {
      depth++;
    } else if (code === 0x7d || code === 0x5d) {
      if (depth === 0) return at;
      depth--;
      if (depth === 0) return at + 1;
    } else if (depth === 0 && (code === 0x2c || code === 0x20 || code === 0x0a || code === 0x0d || code === 0x09)) {
      return at;
    }
  }
  if (depth === 0 && !inString) return text.length;
  throw new SyntaxError('Unexpected end of JSON input');
}

function unexpected(text: string, at: number): SyntaxError {
  return new SyntaxError(at >= text.length ? 'Unexpected end of JSON input' : `Unexpected token '${text[at]}' in JSON at position ${at}`);
}
