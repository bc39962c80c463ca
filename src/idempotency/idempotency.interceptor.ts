import { BadRequestException, CallHandler, ExecutionContext, Injectable, NestInterceptor } from '@nestjs/common';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { from, Observable, of } from 'rxjs';
import { catchError, mergeMap } from 'rxjs/operators';
import { IDEMPOTENCY_KEY_PATTERN, IdempotencyService, requestFingerprint } from './idempotency.service';

/** Runs after the guards (so the caller is known) and around validation and the handler. */
@Injectable()
export class IdempotencyInterceptor implements NestInterceptor {
  constructor(private readonly idempotency: IdempotencyService) {}

  async intercept(context: ExecutionContext, next: CallHandler): Promise<Observable<unknown>> {
    const request = context.switchToHttp().getRequest<FastifyRequest & { principal?: { keyId?: string } }>();
    const key = request.headers['idempotency-key'];
    // A server-sent event stream cannot be stored and replayed.
    if (key === undefined || (request.body as { stream?: unknown } | undefined)?.stream === true) return next.handle();
    if (typeof key !== 'string' || !IDEMPOTENCY_KEY_PATTERN.test(key)) {
      throw new BadRequestException(`Idempotency-Key must match ${IDEMPOTENCY_KEY_PATTERN.source}`);
    }
    const reply = context.switchToHttp().getResponse<FastifyReply>();
    const route = request.routeOptions.url ?? request.url;
    const scope = `${route}|${request.principal?.keyId ?? 'anonymous'}`;
    const claim = await this.idempotency.claim(scope, key, requestFingerprint(request.method, route, request.body));
    if (claim.kind === 'replay') {
      reply.header('idempotent-replayed', 'true');
      reply.status(claim.statusCode);
      return of(claim.body);
    }
    return next.handle().pipe(
      mergeMap((body) => from(this.idempotency.complete(claim.id, reply.statusCode, body).then(() => body))),
      catchError((error: unknown) => from(this.idempotency.release(claim.id).then(() => Promise.reject(error)))),
    );
  }
}
