import { CallHandler, ExecutionContext, Injectable, NestInterceptor, SetMetadata } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import type { FastifyReply } from 'fastify';
import { Observable } from 'rxjs';
import { mergeMap } from 'rxjs/operators';
import { stringifyInSlices } from './sliced-json';

const SERIALISED_IN_SLICES = 'serialisedInSlices';

/** Marks a handler whose JSON answer can be megabytes: it is serialised across turns of the event loop. */
export const SerialisedInSlices = (): MethodDecorator => SetMetadata(SERIALISED_IN_SLICES, true);

/**
 * Global, so that it wraps every route interceptor: what it serialises is what the client gets,
 * after the idempotency interceptor stored the answer (or replayed a stored one).
 */
@Injectable()
export class SlicedJsonInterceptor implements NestInterceptor {
  constructor(private readonly reflector: Reflector) {}

  intercept(context: ExecutionContext, next: CallHandler): Observable<unknown> {
    if (context.getType() !== 'http' || this.reflector.get<boolean | undefined>(SERIALISED_IN_SLICES, context.getHandler()) !== true) return next.handle();
    const reply = context.switchToHttp().getResponse<FastifyReply>();
    return next.handle().pipe(
      mergeMap(async (body: unknown) => {
        if (body === undefined || reply.sent) return body;
        const json = await stringifyInSlices(body);
        reply.header('content-type', 'application/json; charset=utf-8');
        return json;
      }),
    );
  }
}
