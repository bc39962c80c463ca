import { applyDecorators, UseInterceptors } from '@nestjs/common';
import { ApiHeader } from '@nestjs/swagger';
import { ApiErrorResponses } from '../common/api-responses.decorator';
import { IdempotencyInterceptor } from './idempotency.interceptor';

/** Lets clients retry safely: same Idempotency-Key and body within 24 h -> the first response, counted once. */
export function Idempotent(): MethodDecorator & ClassDecorator {
  return applyDecorators(
    UseInterceptors(IdempotencyInterceptor),
    ApiHeader({
      name: 'Idempotency-Key',
      required: false,
      description: 'Retries with the same key and body within 24 h return the first response and are counted once; the same key with another body is 422',
      schema: { type: 'string', pattern: '^[A-Za-z0-9_.:-]{1,128}$' },
    }),
    ApiErrorResponses('idempotency-in-progress', 'idempotency-mismatch'),
  ) as MethodDecorator & ClassDecorator;
}
