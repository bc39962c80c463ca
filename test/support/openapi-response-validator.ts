import Ajv, { type ValidateFunction } from 'ajv';

type Json = Record<string, unknown>;

interface OpenApiDocument {
  paths: Record<string, Record<string, { responses: Record<string, { content?: Record<string, { schema?: Json }> }> }>>;
  components: Json;
}

const DOCUMENT_ID = 'openapi.json';
/** Keywords whose values are data, not schemas: copied as they are. */
const DATA_KEYWORDS = new Set(['enum', 'default', 'const', 'required']);

/**
 * OpenAPI 3.0 schemas as JSON Schema: `nullable` becomes a 'null' alternative, examples
 * are dropped, and component references point into the registered document.
 */
function toJsonSchema(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(toJsonSchema);
  if (!node || typeof node !== 'object') return node;
  const { nullable, example: _example, examples: _examples, ...rest } = node as Json;
  const schema: Json = {};
  for (const [key, value] of Object.entries(rest)) {
    if (key === '$ref' && typeof value === 'string' && value.startsWith('#/')) schema[key] = `${DOCUMENT_ID}${value}`;
    else if (key === 'properties' && value && typeof value === 'object') {
      schema[key] = Object.fromEntries(Object.entries(value).map(([name, property]) => [name, toJsonSchema(property)]));
    } else schema[key] = DATA_KEYWORDS.has(key) ? value : toJsonSchema(value);
  }
  if (nullable !== true) return schema;
  if (typeof schema.type === 'string' && !schema.$ref) {
    return { ...schema, type: [schema.type, 'null'], ...(Array.isArray(schema.enum) ? { enum: [...schema.enum, null] } : {}) };
  }
  return { anyOf: [schema, { type: 'null' }] };
}

/** Checks real answers against what the OpenAPI document says the operation answers. */
export class OpenApiResponseValidator {
  private readonly ajv = new Ajv({ strict: false, allErrors: true, validateFormats: false });
  private readonly validators = new Map<string, ValidateFunction>();

  constructor(private readonly document: OpenApiDocument) {
    this.ajv.addSchema({ $id: DOCUMENT_ID, components: toJsonSchema(document.components) });
  }

  /** Problems with this answer (none when it is documented and its JSON body fits the schema). */
  problems(method: string, pathTemplate: string, status: number, body: unknown): string[] {
    const name = `${method.toUpperCase()} ${pathTemplate} ${status}`;
    const operation = this.document.paths[pathTemplate]?.[method.toLowerCase()];
    if (!operation) return [`${name}: operation not documented`];
    const response = operation.responses[String(status)];
    if (!response) return [`${name}: status not documented (documented: ${Object.keys(operation.responses).join(', ')})`];
    const schema = response.content?.['application/json']?.schema;
    if (!schema) return [`${name}: no JSON body schema`];
    let validate = this.validators.get(name);
    if (!validate) {
      validate = this.ajv.compile(toJsonSchema(schema) as Json);
      this.validators.set(name, validate);
    }
    if (validate(body)) return [];
    return (validate.errors ?? []).map((error) => `${name}: body${error.instancePath} ${error.message}`);
  }
}
