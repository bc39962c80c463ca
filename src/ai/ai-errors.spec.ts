import { HttpStatus } from '@nestjs/common';
import {
  AiFailedAttempt,
  aiFailureException,
  AiProviderCallError,
  AiProviderException,
  AiRequestAbortedException,
  AiTimeoutException,
  AiUnavailableException,
} from './ai-errors';

describe(AiProviderCallError.name, () => {
  it.each([
    [400, 'rejected', false],
    [401, 'auth', false],
    [403, 'auth', false],
    [404, 'rejected', false],
    [408, 'timeout', true],
    [409, 'server_error', true],
    [422, 'rejected', false],
    [429, 'rate_limited', true],
    [500, 'server_error', true],
    [502, 'server_error', true],
    [503, 'server_error', true],
  ])('classifies HTTP %d as %s (retryable: %s)', (status, kind, retryable) => {
    const error = AiProviderCallError.fromStatus(status);
    expect(error.kind).toBe(kind);
    expect(error.retryable).toBe(retryable);
    expect(error.detail).toBe(`returned HTTP ${status}`);
  });

  it('treats network failures and timeouts as retryable (fallback), unusable answers and aborts as not', () => {
    expect(new AiProviderCallError('network', 'connection failed').retryable).toBe(true);
    expect(new AiProviderCallError('timeout', 'timed out').retryable).toBe(true);
    expect(new AiProviderCallError('invalid_answer', 'bad JSON').retryable).toBe(false);
    expect(new AiProviderCallError('aborted', 'aborted').retryable).toBe(false);
  });
});

describe('aiFailureException', () => {
  const primaryTimeout: AiFailedAttempt = { role: 'primary', model: 'openai/gpt-4o-mini', kind: 'timeout', detail: 'timed out after 60000 ms' };
  const fallback502: AiFailedAttempt = { role: 'fallback', model: 'openai/gpt-4o', kind: 'server_error', detail: 'returned HTTP 502', status: 502 };

  it('writes one actionable message naming every attempt', () => {
    const exception = aiFailureException([primaryTimeout, fallback502]);
    expect(exception).toBeInstanceOf(AiProviderException);
    expect(exception.getStatus()).toBe(HttpStatus.BAD_GATEWAY);
    expect(exception.getResponse()).toEqual({
      statusCode: 502,
      error: 'Bad Gateway',
      message: 'AI provider failed: primary model openai/gpt-4o-mini timed out after 60000 ms; fallback model openai/gpt-4o returned HTTP 502',
      attempts: [
        { role: 'primary', model: 'openai/gpt-4o-mini', failure: 'timeout' },
        { role: 'fallback', model: 'openai/gpt-4o', failure: 'server_error', status: 502 },
      ],
    });
  });

  it.each([
    ['timeout', AiTimeoutException, 504],
    ['auth', AiUnavailableException, 503],
    ['rate_limited', AiUnavailableException, 503],
    ['server_error', AiProviderException, 502],
    ['network', AiProviderException, 502],
    ['rejected', AiProviderException, 502],
    ['invalid_answer', AiProviderException, 502],
    ['aborted', AiRequestAbortedException, 499],
  ] as const)('lets the last attempt decide: %s -> %p (%d)', (kind, type, status) => {
    const exception = aiFailureException([fallback502, { ...fallback502, kind, detail: 'x' }]);
    expect(exception).toBeInstanceOf(type);
    expect(exception.getStatus()).toBe(status);
  });
});
