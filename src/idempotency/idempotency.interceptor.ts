import { BadRequestException, CallHandler, ExecutionContext, Injectable, NestInterceptor } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { from, Observable, of } from 'rxjs';
import { catchError, mergeMap } from 'rxjs/operators';
import { ACCESS_METADATA, AccessPolicy } from '../auth/access.decorator';
import type { Principal } from '../auth/principal';
import { USER_ID_PATTERN } from '../common/user-id';
import { IDEMPOTENCY_KEY_PATTERN, IdempotencyService, requestFingerprint } from './idempotency.service';

/** Runs after the guards (so the caller is known) and around validation and the handler. */
@Injectable()
export class IdempotencyInterceptor implements NestInterceptor {
  constructor(
    private readonly idempotency: IdempotencyService,
    private readonly reflector: Reflector,
  ) {}

  async intercept(context: ExecutionContext, next: CallHandler): Promise<Observable<unknown>> {
    const request = context.switchToHttp().getRequest<FastifyRequest>();
    const key = request.headers['idempotency-key'];
    // A server-sent event stream cannot be stored and replayed.
    if (key === undefined || (request.body as { stream?: unknown } | undefined)?.stream === true) return next.handle();
    if (typeof key !== 'string' || !IDEMPOTENCY_KEY_PATTERN.test(key)) {
      throw new BadRequestException(`Idempotency-Key must match ${IDEMPOTENCY_KEY_PATTERN.source}`);
    }
    const reply = context.switchToHttp().getResponse<FastifyReply>();
    const route = request.routeOptions.url ?? request.url;
    const scope = `${route}|${this.ownerOf(context, request)}`;
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

  /**
   * Keys live in the namespace of the user the request acts for (whichever key sends it), so one
   * user's keys never meet another's; a route that acts for no user keeps them per API key.
   */
  private ownerOf(context: ExecutionContext, request: FastifyRequest): string {
    const policy = this.reflector.getAllAndOverride<AccessPolicy | undefined>(ACCESS_METADATA, [context.getHandler(), context.getClass()]);
    const principal: Principal | undefined = request.principal;
    if (policy?.level === 'user') {
      const { source, field } = policy.owner;
      const container = (source === 'param' ? request.params : request[source]) as Record<string, unknown> | undefined;
      const owner = principal?.userId ?? container?.[field];
      if (typeof owner === 'string' && USER_ID_PATTERN.test(owner)) return `user:${owner}`;
    }
    return `key:${principal?.keyId ?? 'anonymous'}`;
  }
}
