import { ArgumentsHost, Catch, ExceptionFilter, HttpException, HttpStatus, Logger } from '@nestjs/common';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { randomUUID } from 'node:crypto';
import { STATUS_CODES } from 'node:http';
import { requestUsageFor } from '../ai/request-usage';

export interface ErrorBody {
  statusCode: number;
  error: string;
  message: string;
  requestId?: string;
  errorId?: string;
  [extra: string]: unknown;
}

/** Errors that Fastify raises before a handler runs (body too large, bad JSON, bad media type). */
function clientErrorStatus(exception: unknown): number | undefined {
  const status = (exception as { statusCode?: unknown })?.statusCode;
  return typeof status === 'number' && status >= 400 && status < 500 ? status : undefined;
}

export function toErrorBody(exception: unknown, requestId: string | undefined, logger: Logger): ErrorBody {
  if (exception instanceof HttpException) {
    const status = exception.getStatus();
    const response = exception.getResponse();
    const body: ErrorBody =
      typeof response === 'string'
        ? { statusCode: status, error: STATUS_CODES[status] ?? 'Error', message: response }
        : {
            ...(response as Record<string, unknown>),
            statusCode: status,
            error: String((response as { error?: unknown }).error ?? STATUS_CODES[status] ?? 'Error'),
            message: Array.isArray((response as { message?: unknown }).message)
              ? ((response as { message: string[] }).message).join('; ')
              : String((response as { message?: unknown }).message ?? exception.message),
          };
    if (status >= 500) logger.error(`${status} ${body.message}`);
    return { ...body, requestId };
  }
  const clientStatus = clientErrorStatus(exception);
  if (clientStatus) {
    return {
      statusCode: clientStatus,
      error: STATUS_CODES[clientStatus] ?? 'Error',
      message: (exception as Error).message,
      requestId,
    };
  }
  const errorId = randomUUID();
  logger.error({ err: exception, errorId, requestId }, `Unhandled error ${errorId}`);
  return {
    statusCode: HttpStatus.INTERNAL_SERVER_ERROR,
    error: 'Internal Server Error',
    message: `Internal server error (error id ${errorId})`,
    errorId,
    requestId,
  };
}

/** HTTP exceptions pass through as JSON; anything else becomes a logged 500 with an error id. */
@Catch()
export class AllExceptionsFilter implements ExceptionFilter {
  private readonly logger = new Logger('Exceptions');

  catch(exception: unknown, host: ArgumentsHost): void {
    const http = host.switchToHttp();
    const request = http.getRequest<FastifyRequest>();
    const reply = http.getResponse<FastifyReply>();
    const base = toErrorBody(exception, request?.id, this.logger);
    if (reply.sent) return;
    // A failed AI request still says what its provider calls cost (unless the thrower already did).
    const body = 'token_usage' in base ? base : { ...base, ...requestUsageFor(request)?.failureFields(base.statusCode) };
    const retryAfter = (body as { retryAfterSeconds?: unknown }).retryAfterSeconds;
    if (typeof retryAfter === 'number') reply.header('retry-after', String(retryAfter));
    void reply.status(body.statusCode).type('application/json; charset=utf-8').send(body);
  }
}
