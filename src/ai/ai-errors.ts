import { HttpException, HttpStatus } from '@nestjs/common';
import type { ProviderUsage } from './ai-provider.interface';

export type AiFailureKind =
  | 'timeout'
  | 'rate_limited'
  | 'server_error'
  | 'network'
  | 'auth'
  | 'rejected'
  | 'invalid_answer'
  | 'aborted';

/** Provider failures: the next model in the chain may succeed. An unusable answer is repaired on the same model instead. */
const RETRYABLE: ReadonlySet<AiFailureKind> = new Set(['timeout', 'rate_limited', 'server_error', 'network']);

/** What a provider had produced before it failed; present only when the provider had accepted the request. */
export interface PartialCompletion {
  text: string;
  usage: ProviderUsage | null;
  model: string;
  latencyMs: number;
}

/**
 * A provider call that failed, classified. `detail` is written by us (status code,
 * error code, duration) and is safe to show a client; the provider's own message and
 * body never go into it.
 */
export class AiProviderCallError extends Error {
  constructor(
    readonly kind: AiFailureKind,
    readonly detail: string,
    readonly options: { status?: number; partial?: PartialCompletion; cause?: unknown; retryAfterSeconds?: number } = {},
  ) {
    super(detail, { cause: options.cause });
    this.name = AiProviderCallError.name;
  }

  get retryable(): boolean {
    return RETRYABLE.has(this.kind);
  }

  get status(): number | undefined {
    return this.options.status;
  }

  get partial(): PartialCompletion | undefined {
    return this.options.partial;
  }

  /** The provider's Retry-After on a 429, in seconds. */
  get retryAfterSeconds(): number | undefined {
    return this.options.retryAfterSeconds;
  }

  static fromStatus(status: number, partial?: PartialCompletion, retryAfterSeconds?: number): AiProviderCallError {
    const detail = `returned HTTP ${status}`;
    if (status === 408) return new AiProviderCallError('timeout', detail, { status, partial });
    if (status === 429) return new AiProviderCallError('rate_limited', detail, { status, partial, ...(retryAfterSeconds !== undefined ? { retryAfterSeconds } : {}) });
    if (status === 401 || status === 403) return new AiProviderCallError('auth', detail, { status, partial });
    if (status === 409 || status >= 500) return new AiProviderCallError('server_error', detail, { status, partial });
    return new AiProviderCallError('rejected', detail, { status, partial });
  }
}

export interface AiFailedAttempt {
  role: 'primary' | 'fallback';
  model: string;
  kind: AiFailureKind;
  detail: string;
  status?: number;
  repair?: boolean;
  retryAfterSeconds?: number;
}

interface AiFailureBody {
  statusCode: number;
  error: string;
  message: string;
  attempts: Array<{ role: 'primary' | 'fallback'; model: string; failure: AiFailureKind; status?: number; repair?: boolean }>;
}

function failureBody(statusCode: number, error: string, attempts: readonly AiFailedAttempt[]): AiFailureBody {
  const parts = attempts.map((attempt) => `${attempt.role} model ${attempt.model}${attempt.repair ? ' (repair)' : ''} ${attempt.detail}`);
  return {
    statusCode,
    error,
    message: `AI provider failed: ${parts.join('; ')}`,
    attempts: attempts.map(({ role, model, kind, status, repair }) => ({ role, model, failure: kind, ...(status ? { status } : {}), ...(repair ? { repair } : {}) })),
  };
}

/** The provider answered badly: 5xx, a rejected request, a reset connection, an unusable answer. */
export class AiProviderException extends HttpException {
  constructor(readonly attempts: readonly AiFailedAttempt[]) {
    super(failureBody(HttpStatus.BAD_GATEWAY, 'Bad Gateway', attempts), HttpStatus.BAD_GATEWAY);
  }
}

/** No usable provider right now: our credentials were refused, or we are rate limited. Fixing it is on the operator or time, not the client. */
export class AiUnavailableException extends HttpException {
  constructor(readonly attempts: readonly AiFailedAttempt[]) {
    // The provider's Retry-After, when it gave one, becomes ours (the exception filter sets the header).
    const retryAfterSeconds = attempts[attempts.length - 1]?.retryAfterSeconds;
    super(
      { ...failureBody(HttpStatus.SERVICE_UNAVAILABLE, 'Service Unavailable', attempts), ...(retryAfterSeconds !== undefined ? { retryAfterSeconds } : {}) },
      HttpStatus.SERVICE_UNAVAILABLE,
    );
  }
}

export class AiTimeoutException extends HttpException {
  constructor(readonly attempts: readonly AiFailedAttempt[]) {
    super(failureBody(HttpStatus.GATEWAY_TIMEOUT, 'Gateway Timeout', attempts), HttpStatus.GATEWAY_TIMEOUT);
  }
}

/** The caller aborted (client went away). 499 is nginx's "client closed request"; nobody is left to read it. */
export class AiRequestAbortedException extends HttpException {
  static readonly STATUS = 499;
  constructor() {
    super(
      { statusCode: AiRequestAbortedException.STATUS, error: 'Client Closed Request', message: 'AI request aborted by the caller' },
      AiRequestAbortedException.STATUS,
    );
  }
}

/** The last attempt decides the status: it is the final word on whether the provider is usable. */
export function aiFailureException(attempts: readonly AiFailedAttempt[]): HttpException {
  const last = attempts[attempts.length - 1];
  if (!last) throw new Error('aiFailureException needs at least one failed attempt');
  switch (last.kind) {
    case 'timeout':
      return new AiTimeoutException(attempts);
    case 'auth':
    case 'rate_limited':
      return new AiUnavailableException(attempts);
    case 'aborted':
      return new AiRequestAbortedException();
    default:
      return new AiProviderException(attempts);
  }
}
