import { applyDecorators, Type } from '@nestjs/common';
import { ApiExtraModels, ApiOkResponse, ApiResponse, getSchemaPath } from '@nestjs/swagger';
import type { HeaderObject, MediaTypeObject, ResponseObject } from '@nestjs/swagger';
import {
  AiFailureResponseDto,
  ErrorResponseDto,
  RateLimitErrorResponseDto,
  TokenLimitErrorResponseDto,
  ValidationErrorResponseDto,
} from './dto/error-response.dto';

type Decorator = MethodDecorator & ClassDecorator;

const REQUEST_ID = '0b6f7c1e-1a2b-4c3d-8e9f-0123456789ab';
const TOKEN_USAGE_EXAMPLE = { prompt_tokens: 1250, completion_tokens: 0, total_tokens: 1250, embedding_tokens: 0, cost_estimate_usd: 0.0002, estimated: false };
const TOKEN_USAGE_SUMMARY_EXAMPLE = { promptTokens: 8500, completionTokens: 7250, totalTokens: 15750, requestCount: 43, tokensUsedThisRequest: 1250, trackingEnabled: true };

interface ErrorKindSpec {
  status: number;
  type: Type<unknown>;
  description: string;
  example: Record<string, unknown>;
  headers?: Record<string, HeaderObject>;
}

const RETRY_AFTER: Record<string, HeaderObject> = {
  'retry-after': { description: 'Seconds until a retry can succeed', schema: { type: 'integer' } },
};

function error(statusCode: number, reason: string, message: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { statusCode, error: reason, message, requestId: REQUEST_ID, ...extra };
}

function aiFailure(statusCode: number, reason: string, failure: string, detail: string): Record<string, unknown> {
  return error(statusCode, reason, `AI provider failed: primary model openai/gpt-4o-mini ${detail}`, {
    attempts: [{ role: 'primary', model: 'openai/gpt-4o-mini', failure, ...(statusCode === 504 ? {} : { status: statusCode === 503 ? 429 : 500 }) }],
    token_usage: TOKEN_USAGE_EXAMPLE,
    tokenUsage: TOKEN_USAGE_SUMMARY_EXAMPLE,
  });
}

/** Every error a route can answer with, by what went wrong; the body shapes are in dto/error-response.dto.ts. */
const ERROR_KINDS = {
  validation: {
    status: 400,
    type: ValidationErrorResponseDto,
    description: 'The request is invalid; `fields` names every offending field when validation failed',
    example: error(400, 'Bad Request', 'userId must match ^[A-Za-z0-9_.@-]{1,128}$', {
      fields: [{ field: 'userId', errors: ['userId must match ^[A-Za-z0-9_.@-]{1,128}$'] }],
    }),
  },
  unauthorized: {
    status: 401,
    type: ErrorResponseDto,
    description: 'Missing, malformed, unknown or revoked API key',
    example: error(401, 'Unauthorized', 'Missing API key: send "Authorization: Bearer <key>" or "x-api-key: <key>"'),
  },
  forbidden: {
    status: 403,
    type: ErrorResponseDto,
    description: "The key's role or user may not do this",
    example: error(403, 'Forbidden', 'userId "bob" does not belong to this API key'),
  },
  'not-found': {
    status: 404,
    type: ErrorResponseDto,
    description: 'Nothing found for the given id',
    example: error(404, 'Not Found', 'No token usage recorded for user "user123"'),
  },
  'idempotency-in-progress': {
    status: 409,
    type: ErrorResponseDto,
    description: 'A request with the same Idempotency-Key is still running; retry later',
    example: error(409, 'Conflict', 'A request with Idempotency-Key "order-42" is still in progress'),
  },
  'record-id-conflict': {
    status: 409,
    type: ErrorResponseDto,
    description: "The recordId was already used for a different call of this user's",
    example: error(409, 'Conflict', 'recordId "tool-call-9" was already used for a different call'),
  },
  'payload-too-large': {
    status: 413,
    type: ErrorResponseDto,
    description: 'The request body exceeds the body size limit (BODY_LIMIT_BYTES)',
    example: error(413, 'Payload Too Large', 'Request body is too large'),
  },
  'unsupported-media-type': {
    status: 415,
    type: ErrorResponseDto,
    description: 'The body is not JSON (send Content-Type: application/json)',
    example: error(415, 'Unsupported Media Type', 'Unsupported Media Type'),
  },
  'idempotency-mismatch': {
    status: 422,
    type: ErrorResponseDto,
    description: 'The Idempotency-Key was already used with a different request body',
    example: error(422, 'Unprocessable Entity', 'Idempotency-Key "order-42" was already used with a different request'),
  },
  'rate-limit': {
    status: 429,
    type: RateLimitErrorResponseDto,
    description: 'Per-key request rate limit exceeded; see Retry-After',
    example: error(429, 'Too Many Requests', 'rate limit of 600 requests per minute reached for this API key; retry in 12 s', { retryAfterSeconds: 12 }),
    headers: {
      ...RETRY_AFTER,
      'x-ratelimit-limit': { description: "The key's requests per minute", schema: { type: 'integer' } },
      'x-ratelimit-remaining': { description: 'Requests left in this minute', schema: { type: 'integer' } },
      'x-ratelimit-reset': { description: 'Seconds until the minute resets', schema: { type: 'integer' } },
    },
  },
  'token-limit': {
    status: 429,
    type: TokenLimitErrorResponseDto,
    description: "The user's token or cost limit is reached; `resetsAt` and Retry-After say when it frees up",
    example: error(429, 'Too Many Requests', '24-hour token limit of 50000 tokens reached; resets at 2026-11-24T09:12:00.000Z', {
      limit: 'rolling_24h_tokens',
      used: 49800,
      max: 50000,
      resetsAt: '2026-11-24T09:12:00.000Z',
      retryAfterSeconds: 3600,
    }),
    headers: RETRY_AFTER,
  },
  'ai-provider-failed': {
    status: 502,
    type: AiFailureResponseDto,
    description: 'The AI provider failed or its answer was unusable; tokens it consumed are in `token_usage` and are billed',
    example: aiFailure(502, 'Bad Gateway', 'server_error', 'returned HTTP 500'),
  },
  'ai-unavailable': {
    status: 503,
    type: AiFailureResponseDto,
    description: 'No AI provider is usable right now (credentials refused or provider rate limit); retry later',
    example: aiFailure(503, 'Service Unavailable', 'rate_limited', 'returned HTTP 429'),
  },
  'limits-unavailable': {
    status: 503,
    type: ErrorResponseDto,
    description: "Usage limits cannot be checked (Redis unavailable) and the user's tier fails closed; retry shortly",
    example: error(503, 'Service Unavailable', 'Usage limits cannot be checked right now (Redis unavailable) and tier FREE fails closed; retry shortly'),
  },
  'ai-timeout': {
    status: 504,
    type: AiFailureResponseDto,
    description: 'The AI provider did not answer in time (AI_TIMEOUT_MS)',
    example: aiFailure(504, 'Gateway Timeout', 'timeout', 'timed out after 30000 ms'),
  },
} satisfies Record<string, ErrorKindSpec>;

export type ErrorKind = keyof typeof ERROR_KINDS;

/** The errors every route that calls the AI provider can answer with, besides its own. */
export const AI_ERRORS: readonly ErrorKind[] = ['token-limit', 'ai-provider-failed', 'ai-unavailable', 'limits-unavailable', 'ai-timeout'];
/** The errors of every route that takes a JSON body. */
export const BODY_ERRORS: readonly ErrorKind[] = ['validation', 'payload-too-large', 'unsupported-media-type'];

/** The metadata key @nestjs/swagger keeps responses under (its constants are not exported), found by probing. */
const API_RESPONSE_METADATA: unknown = (() => {
  class Probe {}
  ApiResponse({ status: 200 })(Probe);
  return Reflect.getOwnMetadataKeys(Probe)[0];
})();

const KINDS_METADATA = 'token-ledger:api-error-kinds';
const DESCRIPTIONS_METADATA = 'token-ledger:api-error-descriptions';

function responseOf(kinds: ErrorKind[], descriptions: Partial<Record<ErrorKind, string>>): ResponseObject {
  const specs = kinds.map((kind): ErrorKindSpec & { kind: ErrorKind } => ({ kind, ...ERROR_KINDS[kind] }));
  const types = [...new Set(specs.map((spec) => spec.type))];
  const schema = types.length === 1 ? { $ref: getSchemaPath(types[0]) } : { anyOf: types.map((type) => ({ $ref: getSchemaPath(type) })) };
  const described = specs.map((spec) => descriptions[spec.kind] ?? spec.description);
  const headers = Object.assign({}, ...specs.map((spec) => spec.headers ?? {})) as Record<string, HeaderObject>;
  return {
    description: described.length === 1 ? described[0] : described.map((text) => `- ${text}`).join('\n'),
    ...(Object.keys(headers).length > 0 ? { headers } : {}),
    content: {
      'application/json': {
        schema,
        examples: Object.fromEntries(specs.map((spec) => [spec.kind, { summary: descriptions[spec.kind] ?? spec.description, value: spec.example }])),
      },
    },
  };
}

/**
 * Documents error responses by what went wrong. Kinds accumulate over every use on a route,
 * in any decorator order; kinds sharing a status (429: rate limit or token limit) become one
 * response whose schema is anyOf their bodies (a token-limit body is also a rate-limit body). Errors always answer application/json,
 * whatever the success response produces.
 */
export function ApiErrorResponses(...entries: Array<ErrorKind | readonly ErrorKind[] | { kind: ErrorKind; description: string }>): Decorator {
  const kinds: ErrorKind[] = [];
  const descriptions: Partial<Record<ErrorKind, string>> = {};
  for (const entry of entries) {
    if (typeof entry === 'string') kinds.push(entry);
    else if (Array.isArray(entry)) kinds.push(...(entry as readonly ErrorKind[]));
    else {
      const described = entry as { kind: ErrorKind; description: string };
      kinds.push(described.kind);
      descriptions[described.kind] = described.description;
    }
  }
  const record = (target: object, _key?: string | symbol, descriptor?: PropertyDescriptor) => {
    const holder = descriptor ? descriptor.value : target;
    const allKinds: ErrorKind[] = [...new Set([...(Reflect.getMetadata(KINDS_METADATA, holder) ?? []), ...kinds])];
    const allDescriptions = { ...(Reflect.getMetadata(DESCRIPTIONS_METADATA, holder) ?? {}), ...descriptions };
    Reflect.defineMetadata(KINDS_METADATA, allKinds, holder);
    Reflect.defineMetadata(DESCRIPTIONS_METADATA, allDescriptions, holder);
    const responses = { ...(Reflect.getMetadata(API_RESPONSE_METADATA, holder) ?? {}) };
    const statuses = new Set(kinds.map((kind) => ERROR_KINDS[kind].status));
    for (const status of statuses) {
      responses[status] = responseOf(allKinds.filter((kind) => ERROR_KINDS[kind].status === status), allDescriptions);
    }
    Reflect.defineMetadata(API_RESPONSE_METADATA, responses, holder);
    return descriptor ?? target;
  };
  return applyDecorators(ApiExtraModels(...new Set(kinds.map((kind) => ERROR_KINDS[kind].type))), record as Decorator) as Decorator;
}

/**
 * Attaches response headers to the success response they come with, keeping whatever
 * @ApiOkResponse says about its body, in either decorator order.
 */
export function ApiSuccessHeaders(headers: Record<string, HeaderObject>, status = 200): MethodDecorator {
  return (_target, _key, descriptor) => {
    const holder = descriptor.value as object;
    const responses = { ...(Reflect.getMetadata(API_RESPONSE_METADATA, holder) ?? {}) };
    const existing = responses[status] ?? { description: '' };
    responses[status] = { ...existing, headers: { ...existing.headers, ...headers } };
    Reflect.defineMetadata(API_RESPONSE_METADATA, responses, holder);
    return descriptor;
  };
}

/** A 200 whose JSON body is `type`, plus the other media types a client can ask for (server-sent events, Prometheus text). */
export function ApiOkJsonOr(type: Type<unknown>, others: Record<string, MediaTypeObject>, description: string): MethodDecorator {
  return applyDecorators(
    ApiExtraModels(type),
    ApiOkResponse({ description, content: { 'application/json': { schema: { $ref: getSchemaPath(type) } }, ...others } }),
  );
}
