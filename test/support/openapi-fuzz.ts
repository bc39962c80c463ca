/**
 * Request variants generated from an OpenAPI document: for every operation, a valid baseline
 * built from the schemas' examples, then each body, query, path and header field broken in
 * one way (wrong type, missing, huge, deeply nested, operator object, control characters,
 * NaN / 1e309 / exponent notation, ...) plus whole-request breakage (invalid JSON, wrong media
 * type, a body that is not an object, one over the size limit).
 */

export interface OpenApiSchema {
  $ref?: string;
  type?: string;
  properties?: Record<string, OpenApiSchema>;
  required?: string[];
  items?: OpenApiSchema;
  enum?: unknown[];
  example?: unknown;
  default?: unknown;
  oneOf?: OpenApiSchema[];
  allOf?: OpenApiSchema[];
  minimum?: number;
  format?: string;
  nullable?: boolean;
}

interface OpenApiParameter {
  name: string;
  in: 'path' | 'query' | 'header' | 'cookie';
  required?: boolean;
  schema?: OpenApiSchema;
}

interface OpenApiOperation {
  parameters?: OpenApiParameter[];
  requestBody?: { content: Record<string, { schema: OpenApiSchema }> };
}

export interface OpenApiDocument {
  paths: Record<string, Record<string, OpenApiOperation>>;
  components?: { schemas?: Record<string, OpenApiSchema> };
}

export interface FuzzOperation {
  method: string;
  path: string;
  label: string;
  pathParams: Record<string, string>;
  query: Record<string, string>;
  headers: Record<string, string>;
  /** undefined: the operation takes no body. */
  body?: Record<string, unknown>;
  bodySchema?: OpenApiSchema;
  fieldPaths: string[][];
}

export interface FuzzVariant {
  label: string;
  method: string;
  /** Path with parameters filled in and query string appended. */
  url: string;
  headers: Record<string, string>;
  /** Raw body text; undefined sends none. */
  rawBody?: string;
}

/** mulberry32: small, fast and good enough to sample variants reproducibly. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function shuffle<T>(items: T[], random: () => number): T[] {
  const copy = [...items];
  for (let i = copy.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [copy[i], copy[j]] = [copy[j], copy[i]];
  }
  return copy;
}

const OWNER_FIELDS = new Set(['userId', 'user', 'user_id', 'username']);
const MAX_SCHEMA_DEPTH = 6;

function resolve(schema: OpenApiSchema | undefined, document: OpenApiDocument): OpenApiSchema {
  if (!schema) return {};
  if (schema.$ref) return resolve(document.components?.schemas?.[schema.$ref.split('/').pop()!], document);
  if (schema.allOf?.length) return resolve(schema.allOf[0], document);
  return schema;
}

function baseline(schema: OpenApiSchema | undefined, document: OpenApiDocument, owner: string, name = '', depth = 0): unknown {
  const resolved = resolve(schema, document);
  if (OWNER_FIELDS.has(name)) return owner;
  if (resolved.example !== undefined) return resolved.example;
  if (resolved.default !== undefined) return resolved.default;
  if (resolved.enum?.length) return resolved.enum[0];
  if (resolved.oneOf?.length) return baseline(resolved.oneOf[0], document, owner, name, depth);
  if (depth > MAX_SCHEMA_DEPTH) return null;
  switch (resolved.type) {
    case 'integer':
    case 'number':
      return resolved.minimum ?? 1;
    case 'boolean':
      return false;
    case 'array':
      return [baseline(resolved.items, document, owner, '', depth + 1)];
    case 'string':
      return resolved.format === 'date-time' ? new Date().toISOString() : 'fuzz';
    default:
      if (resolved.properties) {
        return Object.fromEntries(Object.entries(resolved.properties).map(([key, property]) => [key, baseline(property, document, owner, key, depth + 1)]));
      }
      return 'fuzz';
  }
}

/** Paths to every field of a body, nested ones included (`messages.0.content`). */
function fieldPaths(value: unknown, prefix: string[] = [], depth = 0): string[][] {
  if (depth > MAX_SCHEMA_DEPTH || value === null || typeof value !== 'object') return [];
  const entries = Array.isArray(value) ? value.map((item, index) => [String(index), item] as const) : Object.entries(value as Record<string, unknown>);
  return entries.flatMap(([key, child]) => [[...prefix, key], ...fieldPaths(child, [...prefix, key], depth + 1)]);
}

export function operationsOf(document: OpenApiDocument, owner: string): FuzzOperation[] {
  const operations: FuzzOperation[] = [];
  for (const [path, methods] of Object.entries(document.paths)) {
    for (const [method, operation] of Object.entries(methods)) {
      const pathParams: Record<string, string> = {};
      const query: Record<string, string> = {};
      const headers: Record<string, string> = {};
      for (const parameter of operation.parameters ?? []) {
        const value = baseline(parameter.schema, document, owner, parameter.name);
        if (parameter.in === 'path') pathParams[parameter.name] = String(value);
        if (parameter.in === 'query') query[parameter.name] = String(value);
        // Optional headers (Idempotency-Key) are left out of the baseline: each variant would otherwise replay the first.
        if (parameter.in === 'header' && parameter.required) headers[parameter.name] = String(value);
      }
      const content = operation.requestBody?.content;
      const bodySchema = content ? Object.values(content)[0]?.schema : undefined;
      const body = bodySchema ? (baseline(bodySchema, document, owner) as Record<string, unknown>) : undefined;
      operations.push({ method: method.toUpperCase(), path, label: `${method.toUpperCase()} ${path}`, pathParams, query, headers, body, bodySchema, fieldPaths: body ? fieldPaths(body) : [] });
    }
  }
  return operations;
}

/** A value, or JSON text spliced in verbatim where JSON.stringify cannot say it (NaN, 1e309). */
type Mutation = { name: string; value?: unknown; raw?: string; remove?: true };

function nested(depth: number, leaf: unknown = 1): unknown {
  let value = leaf;
  for (let level = 0; level < depth; level++) value = level % 3 === 0 ? { deeper: value } : [value];
  return value;
}

export const VALUE_MUTATIONS: Mutation[] = [
  { name: 'missing', remove: true },
  { name: 'null', value: null },
  { name: 'number', value: 12345 },
  { name: 'boolean', value: true },
  { name: 'string', value: 'fuzz' },
  { name: 'empty string', value: '' },
  { name: 'array', value: ['a', 1] },
  { name: 'empty object', value: {} },
  { name: '$gt operator', value: { $gt: '' } },
  { name: '$where operator', value: { $where: 'sleep(100)' } },
  { name: '$ne in array', value: [{ $ne: null }] },
  { name: 'huge string', value: 'A'.repeat(300_000) },
  { name: 'long word-free run', value: 'x'.repeat(120_000) },
  { name: 'long array', value: Array.from({ length: 5000 }, (_, i) => `item-${i}`) },
  { name: 'nested 40 deep', value: nested(40) },
  { name: 'nested 2000 deep', value: nested(2000) },
  { name: 'control characters', value: '\u0000\u0001\u0007\u001b[31m\r\n\t\u2028\u2029\u202e' },
  { name: 'lone surrogate', value: 'a\ud800b\udfffc' },
  { name: 'unicode', value: '𝔘𝔫𝔦𝔠𝔬𝔡𝔢 é 中文 🙂 ﷽' },
  { name: 'path traversal', value: '../../../etc/passwd' },
  { name: 'template/injection', value: "${process.env}'; DROP TABLE users; --<script>alert(1)</script>" },
  { name: 'NaN', raw: 'NaN' },
  { name: 'Infinity', raw: 'Infinity' },
  { name: '1e309', raw: '1e309' },
  { name: '-1e309', raw: '-1e309' },
  { name: '1e-7', raw: '1e-7' },
  { name: '1E+2', raw: '1E+2' },
  { name: '-0', raw: '-0' },
  { name: '2^53+1', raw: '9007199254740993' },
  { name: '1e21', raw: '1e21' },
  { name: 'negative', value: -1 },
  { name: 'fraction', value: 1.5 },
  { name: '__proto__ object', raw: '{"__proto__":{"polluted":true},"constructor":{"prototype":{"polluted":true}}}' },
  { name: 'numeric string', value: '42' },
  { name: 'date string', value: '2026-02-30T25:61:00Z' },
];

const QUERY_MUTATIONS: Array<{ name: string; value?: string; remove?: true; repeat?: true; bracket?: true }> = [
  { name: 'missing', remove: true },
  { name: 'empty', value: '' },
  { name: 'word', value: 'abc' },
  { name: 'negative', value: '-1' },
  { name: 'zero', value: '0' },
  { name: '1e309', value: '1e309' },
  { name: 'NaN', value: 'NaN' },
  { name: '1e-7', value: '1e-7' },
  { name: 'huge number', value: '9'.repeat(400) },
  { name: 'long', value: 'q'.repeat(20_000) },
  { name: 'control characters', value: '\u0000\r\n\u001b' },
  { name: 'operator', value: '{"$gt":""}' },
  { name: 'repeated', repeat: true },
  { name: 'bracket operator', bracket: true },
  { name: 'unicode', value: '中文🙂' },
  { name: 'true word', value: 'yes' },
];

const PATH_MUTATIONS = ['%24gt', '%7B%22%24ne%22%3A1%7D', 'a'.repeat(600), '..%2F..%2Fetc%2Fpasswd', '%00', '%ZZ', '%E4%B8%AD%F0%9F%99%82', '%20', '.', 'x%0d%0aSet-Cookie:%20a=b'];

const HEADER_MUTATIONS = ['', 'x'.repeat(5000), '$gt', '{"$gt":""}', 'ümlaut', 'a b', '../x'];

function setAt(target: unknown, path: string[], mutation: Mutation, marker: string): void {
  let container = target as Record<string, unknown>;
  for (const key of path.slice(0, -1)) container = container[key] as Record<string, unknown>;
  const last = path[path.length - 1];
  if (mutation.remove) {
    if (Array.isArray(container)) container.splice(Number(last), 1);
    else delete container[last];
  } else {
    container[last] = mutation.raw !== undefined ? marker : mutation.value;
  }
}

function url(operation: FuzzOperation, pathParams: Record<string, string>, query: Array<[string, string]>): string {
  const path = operation.path.replace(/\{([^}]+)\}/g, (_, name: string) => (name in pathParams ? pathParams[name] : 'x'));
  const search = query.map(([key, value]) => `${encodeURIComponent(key)}=${encodeURIComponent(value)}`).join('&');
  return search ? `${path}?${search}` : path;
}

function encodedPathParams(operation: FuzzOperation): Record<string, string> {
  return Object.fromEntries(Object.entries(operation.pathParams).map(([key, value]) => [key, encodeURIComponent(value)]));
}

/** Every single-fault variant of an operation, in a stable order (the caller samples). */
export function variantsOf(operation: FuzzOperation, bodyLimitBytes: number): FuzzVariant[] {
  const variants: FuzzVariant[] = [];
  const baseQuery = Object.entries(operation.query);
  const basePath = encodedPathParams(operation);
  const json = { 'content-type': 'application/json', ...operation.headers };
  const baseBody = operation.body === undefined ? undefined : JSON.stringify(operation.body);
  const make = (label: string, parts: Partial<Pick<FuzzVariant, 'url' | 'headers' | 'rawBody'>>): FuzzVariant => ({
    label: `${operation.label} [${label}]`,
    method: operation.method,
    url: parts.url ?? url(operation, basePath, baseQuery),
    headers: parts.headers ?? (baseBody === undefined ? { ...operation.headers } : json),
    rawBody: 'rawBody' in parts ? parts.rawBody : baseBody,
  });

  variants.push(make('baseline', {}));

  for (const path of operation.fieldPaths) {
    for (const mutation of VALUE_MUTATIONS) {
      const body = structuredClone(operation.body);
      const marker = `__FUZZ_RAW_${Math.random().toString(36).slice(2)}__`;
      setAt(body, path, mutation, marker);
      const raw = JSON.stringify(body).replace(`"${marker}"`, mutation.raw ?? '');
      variants.push(make(`body ${path.join('.')}: ${mutation.name}`, { rawBody: raw }));
    }
  }

  for (const [name] of baseQuery) {
    for (const mutation of QUERY_MUTATIONS) {
      let query = baseQuery.filter(([key]) => key !== name);
      if (mutation.repeat) query = [...query, [name, 'a'], [name, 'b']];
      else if (mutation.bracket) query = [...query, [`${name}[$gt]`, '']];
      else if (!mutation.remove) query = [...query, [name, mutation.value!]];
      variants.push(make(`query ${name}: ${mutation.name}`, { url: url(operation, basePath, query) }));
    }
  }
  variants.push(make('query: unknown parameter', { url: url(operation, basePath, [...baseQuery, ['unexpected', '1']]) }));
  variants.push(make('query: __proto__', { url: url(operation, basePath, [...baseQuery, ['__proto__', '1'], ['constructor', 'x']]) }));

  for (const name of Object.keys(operation.pathParams)) {
    for (const value of PATH_MUTATIONS) {
      variants.push(make(`path ${name}: ${value.slice(0, 30)}`, { url: url(operation, { ...basePath, [name]: value }, baseQuery) }));
    }
  }

  for (const value of HEADER_MUTATIONS) {
    variants.push(make(`header Idempotency-Key: ${value.slice(0, 20)}`, { headers: { ...(baseBody === undefined ? {} : json), 'idempotency-key': value } }));
  }

  if (baseBody !== undefined) {
    variants.push(make('invalid JSON', { rawBody: '{"a": ' }));
    variants.push(make('JSON with trailing garbage', { rawBody: `${baseBody} trailing` }));
    variants.push(make('BOM before JSON', { rawBody: `\ufeff${baseBody}` }));
    variants.push(make('body is an array', { rawBody: '[]' }));
    variants.push(make('body is a string', { rawBody: '"text"' }));
    variants.push(make('body is null', { rawBody: 'null' }));
    variants.push(make('body is a number', { rawBody: '5' }));
    variants.push(make('empty body', { rawBody: '' }));
    variants.push(make('no body, no content type', { rawBody: undefined, headers: { ...operation.headers } }));
    variants.push(make('text/plain JSON', { headers: { 'content-type': 'text/plain', ...operation.headers } }));
    variants.push(make('form encoded', { headers: { 'content-type': 'application/x-www-form-urlencoded', ...operation.headers }, rawBody: 'a=1&b[$gt]=2' }));
    variants.push(make('XML', { headers: { 'content-type': 'application/xml', ...operation.headers }, rawBody: '<a>1</a>' }));
    variants.push(make('multipart', { headers: { 'content-type': 'multipart/form-data; boundary=x', ...operation.headers }, rawBody: '--x\r\nContent-Disposition: form-data; name="a"\r\n\r\n1\r\n--x--' }));
    variants.push(make('bogus content type', { headers: { 'content-type': 'application/json; charset=utf-7', ...operation.headers } }));
    variants.push(make('unknown field', { rawBody: JSON.stringify({ ...operation.body, unexpected: 1 }) }));
    variants.push(make('top-level __proto__', { rawBody: `{"__proto__":{"isAdmin":true},${baseBody.slice(1)}` }));
    variants.push(make('duplicate keys', { rawBody: `{"a":1,"a":2,${baseBody.slice(1)}` }));
    variants.push(make('nested 100k deep', { rawBody: `{"deep":${'['.repeat(100_000)}${']'.repeat(100_000)}}` }));
    variants.push(make('over the body limit', { rawBody: JSON.stringify({ ...operation.body, padding: 'p'.repeat(bodyLimitBytes) }) }));
  } else {
    variants.push(make('unexpected JSON body', { headers: { 'content-type': 'application/json', ...operation.headers }, rawBody: '{"$where":"1"}' }));
  }
  return variants;
}

/** Several faults at once, for operations whose single-fault variants are fewer than wanted. */
export function combinedVariant(operation: FuzzOperation, random: () => number, index: number): FuzzVariant {
  const body = structuredClone(operation.body);
  const applied: string[] = [];
  const raws: Array<[string, string]> = [];
  const paths = shuffle(operation.fieldPaths.filter((path) => path.length === 1), random).slice(0, 1 + Math.floor(random() * 3));
  for (const path of paths) {
    const mutation = VALUE_MUTATIONS[Math.floor(random() * VALUE_MUTATIONS.length)];
    const marker = `__FUZZ_RAW_${index}_${applied.length}__`;
    setAt(body, path, mutation, marker);
    if (mutation.raw !== undefined) raws.push([marker, mutation.raw]);
    applied.push(`${path.join('.')}: ${mutation.name}`);
  }
  let query = Object.entries(operation.query);
  for (const [name] of query) {
    if (random() < 0.5) continue;
    const mutation = QUERY_MUTATIONS[Math.floor(random() * QUERY_MUTATIONS.length)];
    query = query.filter(([key]) => key !== name);
    if (mutation.value !== undefined) query.push([name, mutation.value]);
    applied.push(`query ${name}: ${mutation.name}`);
  }
  const pathParams = encodedPathParams(operation);
  for (const name of Object.keys(pathParams)) {
    if (random() < 0.5) continue;
    pathParams[name] = PATH_MUTATIONS[Math.floor(random() * PATH_MUTATIONS.length)];
    applied.push(`path ${name}`);
  }
  let rawBody = body === undefined ? undefined : JSON.stringify(body);
  for (const [marker, raw] of raws) rawBody = rawBody?.replace(`"${marker}"`, raw);
  return {
    label: `${operation.label} [combined ${index}: ${applied.join(', ') || 'baseline'}]`,
    method: operation.method,
    url: url(operation, pathParams, query),
    headers: body === undefined ? { ...operation.headers } : { 'content-type': 'application/json', ...operation.headers },
    rawBody,
  };
}
