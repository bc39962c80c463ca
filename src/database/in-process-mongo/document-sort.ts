import { Document } from 'bson';
import { compareBson, getField, isPlainObject } from './bson-values';
import { badValue, unsupported } from './mongo-error';

/** MongoDB's sort order, shared by find, findAndModify and the aggregation `$sort` stage. */

export type SortSpec = Array<[path: string[], direction: 1 | -1]>;

export function parseSort(sort: unknown): SortSpec | undefined {
  if (sort === undefined || sort === null) return undefined;
  if (!isPlainObject(sort)) throw badValue('sort must be an object');
  const spec: SortSpec = [];
  for (const field of Object.keys(sort)) {
    const direction = sort[field];
    if (isPlainObject(direction)) throw unsupported(`sort by ${JSON.stringify(Object.keys(direction))}`);
    if (direction !== 1 && direction !== -1) {
      throw badValue('$sort key ordering must be 1 (for ascending) or -1 (for descending)');
    }
    spec.push([field.split('.'), direction]);
  }
  return spec.length ? spec : undefined;
}

function sortValues(value: unknown, parts: string[], depth: number, out: unknown[]): void {
  if (depth === parts.length) {
    if (Array.isArray(value)) {
      if (value.length === 0) out.push(undefined);
      else out.push(...value);
    } else out.push(value);
    return;
  }
  if (Array.isArray(value)) {
    const part = parts[depth];
    if (/^\d+$/.test(part) && Number(part) < value.length) return sortValues(value[Number(part)], parts, depth + 1, out);
    if (value.length === 0) out.push(undefined);
    for (const element of value) sortValues(element, parts, depth, out);
    return;
  }
  if (isPlainObject(value)) return sortValues(getField(value, parts[depth]), parts, depth + 1, out);
  out.push(undefined);
}

/** MongoDB's sort key: the smallest element of an array ascending, the largest descending. */
function sortKey(doc: Document, path: string[], direction: 1 | -1): unknown {
  const values: unknown[] = [];
  sortValues(doc, path, 0, values);
  let best = values[0];
  for (let i = 1; i < values.length; i++) {
    const order = compareBson(values[i], best);
    if (direction === 1 ? order < 0 : order > 0) best = values[i];
  }
  return best;
}

/** Stable sort of documents (in place), with mongod's BSON ordering across types. */
export function sortDocuments(docs: Document[], spec: SortSpec): Document[] {
  const keyed = docs.map((doc) => ({ doc, keys: spec.map(([path, direction]) => sortKey(doc, path, direction)) }));
  keyed.sort((a, b) => {
    for (let i = 0; i < spec.length; i++) {
      const order = compareBson(a.keys[i], b.keys[i]);
      if (order) return order * spec[i][1];
    }
    return 0;
  });
  for (let i = 0; i < keyed.length; i++) docs[i] = keyed[i].doc;
  return docs;
}
