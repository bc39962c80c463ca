import { Document } from 'bson';
import { Context, ProcessingMode } from 'mingo/core';
import * as accumulatorOperators from 'mingo/operators/accumulator';
import * as expressionOperators from 'mingo/operators/expression';
import * as pipelineOperators from 'mingo/operators/pipeline';
import * as projectionOperators from 'mingo/operators/projection';
import * as queryOperators from 'mingo/operators/query';
import * as windowOperators from 'mingo/operators/window';
import type { Options } from 'mingo/types';
import { Iterator, Lazy } from 'mingo/lazy';
import { resolve } from 'mingo/util';
import { parseSort, sortDocuments } from './document-sort';
import { bsonTypeName, isPlainObject } from './bson-values';
import { badValue, MongoCommandError, unsupported } from './mongo-error';

/**
 * The single mingo configuration every query and pipeline runs with: all operators,
 * scripts disabled ($where, $function and $accumulator fail), and our own `$type`.
 */

const TYPE_ALIASES: Record<string, string> = {
  1: 'double',
  2: 'string',
  3: 'object',
  4: 'array',
  5: 'binData',
  6: 'undefined',
  7: 'objectId',
  8: 'bool',
  9: 'date',
  10: 'null',
  11: 'regex',
  13: 'javascript',
  14: 'symbol',
  16: 'int',
  17: 'timestamp',
  18: 'long',
  19: 'decimal',
  [-1]: 'minKey',
  127: 'maxKey',
};
const KNOWN_TYPES = new Set([...Object.values(TYPE_ALIASES), 'number']);

function typeAlias(spec: unknown): string {
  const alias = typeof spec === 'number' ? TYPE_ALIASES[spec] : spec;
  if (typeof alias !== 'string' || !KNOWN_TYPES.has(alias)) throw badValue(`Unknown type name alias: ${String(spec)}`);
  // Queries see int64 and decimal values as plain numbers (see bson-values), so these
  // aliases cannot be answered faithfully: refuse rather than answer wrongly.
  if (alias === 'long' || alias === 'decimal') throw unsupported(`$type '${alias}'`);
  return alias;
}

function matchesType(value: unknown, alias: string): boolean {
  const name = bsonTypeName(value);
  if (alias === 'number') return name === 'int' || name === 'double';
  return name === alias;
}

/** MongoDB's `$type`: an array matches 'array' itself, or any of its elements may match. */
function $type(selector: string, spec: unknown) {
  const aliases = (Array.isArray(spec) ? spec : [spec]).map(typeAlias);
  return (doc: unknown) => {
    const value = resolve(doc as Document, selector);
    return aliases.some(
      (alias) => matchesType(value, alias) || (Array.isArray(value) && value.some((v) => matchesType(v, alias))),
    );
  };
}

/** `$sort` with MongoDB's order (array keys, cross-type order), the same as find's. */
function $sort(collection: Iterator, spec: unknown): Iterator {
  const parsed = parseSort(spec);
  if (!parsed) throw badValue('$sort stage must have at least one sort key');
  return collection.transform((docs: unknown[]) => Lazy(sortDocuments(docs as Document[], parsed)));
}

const { $out: _out, $merge: _merge, $documents: _documents, ...mingoPipeline } = pipelineOperators;
const pipeline = { ...mingoPipeline, $sort };

export const MINGO_CONTEXT = Context.init({
  accumulator: accumulatorOperators,
  expression: expressionOperators,
  pipeline,
  projection: projectionOperators,
  query: { ...queryOperators, $type },
  window: windowOperators,
} as unknown as Parameters<typeof Context.init>[0]);

export const SUPPORTED_STAGES = new Set(Object.keys(pipeline));

export function mingoOptions(extra: Partial<Options> = {}): Partial<Options> {
  return {
    context: MINGO_CONTEXT,
    idKey: '_id',
    scriptEnabled: false,
    useStrictMode: true,
    failOnError: true,
    processingMode: ProcessingMode.CLONE_OFF,
    ...extra,
  };
}

/** Runs mingo code, turning its errors (and its TypeErrors on bad input) into BadValue. */
export function withMingo<T>(what: string, run: () => T): T {
  try {
    return run();
  } catch (error) {
    if (error instanceof MongoCommandError) throw error;
    throw badValue(`${what}: ${(error as Error).message}`);
  }
}

export const isOperatorObject = (value: unknown): value is Document =>
  isPlainObject(value) && Object.keys(value).some((key) => key.startsWith('$'));
