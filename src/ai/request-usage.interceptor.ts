import { CallHandler, ExecutionContext, Injectable, NestInterceptor } from '@nestjs/common';
import { Observable } from 'rxjs';
import { runWithRequestUsage } from './request-usage';

/** Gives each HTTP request a RequestUsage that AiService adds to and the exception filter reads. */
@Injectable()
export class RequestUsageInterceptor implements NestInterceptor {
  intercept(context: ExecutionContext, next: CallHandler): Observable<unknown> {
    if (context.getType() !== 'http') return next.handle();
    const request = context.switchToHttp().getRequest<object>();
    // Subscribing inside run() makes the handler, and everything it awaits, see this request's store.
    return new Observable((subscriber) => runWithRequestUsage(request, () => next.handle().subscribe(subscriber)));
  }
}
