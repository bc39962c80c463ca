import { applyDecorators, CallHandler, ExecutionContext, Injectable, NestInterceptor, UseInterceptors } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { from, Observable } from 'rxjs';
import { mergeMap } from 'rxjs/operators';
import { ACCESS_METADATA, AccessPolicy } from '../auth/access.decorator';
import { AI_ERRORS, ApiErrorResponses, ApiSuccessHeaders } from '../common/api-responses.decorator';
import { UsageLimitsService } from './usage-limits.service';

export const USAGE_HEADERS = {
  tier: 'x-token-ledger-tier',
  limit: 'x-ratelimit-limit-tokens',
  remaining: 'x-ratelimit-remaining-tokens',
  reset: 'x-ratelimit-reset-tokens',
  dailyRemaining: 'x-token-ledger-remaining-daily-tokens',
  monthlyRemaining: 'x-token-ledger-remaining-monthly-usd',
} as const;

/** The acting user of the route, read where its @Access declaration says the owner is. */
function ownerOf(policy: AccessPolicy | undefined, request: FastifyRequest): string | undefined {
  if (policy?.level !== 'user') return undefined;
  const source = { param: request.params, body: request.body, query: request.query }[policy.owner.source] as Record<string, unknown> | undefined;
  const value = source?.[policy.owner.field];
  return typeof value === 'string' ? value : undefined;
}

/** After an AI call, reports what remains of the user's limits and when the window resets. */
@Injectable()
export class UsageHeadersInterceptor implements NestInterceptor {
  constructor(
    private readonly limits: UsageLimitsService,
    private readonly reflector: Reflector,
  ) {}

  intercept(context: ExecutionContext, next: CallHandler): Observable<unknown> {
    const request = context.switchToHttp().getRequest<FastifyRequest>();
    const policy = this.reflector.getAllAndOverride<AccessPolicy | undefined>(ACCESS_METADATA, [context.getHandler(), context.getClass()]);
    return next.handle().pipe(
      mergeMap((body) => {
        const userId = ownerOf(policy, request);
        if (!userId) return [body];
        const reply = context.switchToHttp().getResponse<FastifyReply>();
        return from(this.setHeaders(userId, reply).then(() => body));
      }),
    );
  }

  private async setHeaders(userId: string, reply: FastifyReply): Promise<void> {
    const state = await this.limits.state(userId);
    reply.header(USAGE_HEADERS.tier, state.tier);
    if (state.limits.rolling24hTokens != null) reply.header(USAGE_HEADERS.limit, String(state.limits.rolling24hTokens));
    if (!state.remaining) return;
    if (state.remaining.rolling24hTokens !== null) reply.header(USAGE_HEADERS.remaining, String(state.remaining.rolling24hTokens));
    if (state.resetAt) reply.header(USAGE_HEADERS.reset, state.resetAt.toISOString());
    if (state.remaining.dailyTokens !== null) reply.header(USAGE_HEADERS.dailyRemaining, String(state.remaining.dailyTokens));
    if (state.remaining.monthlyCostUsd !== null) reply.header(USAGE_HEADERS.monthlyRemaining, state.remaining.monthlyCostUsd.toFixed(6));
  }
}

/** Marks an AI endpoint: its responses carry the user's remaining budget headers. */
export function ReportsUsage(): MethodDecorator {
  return applyDecorators(
    UseInterceptors(UsageHeadersInterceptor),
    ApiSuccessHeaders({
      [USAGE_HEADERS.tier]: { description: "The user's tier", schema: { type: 'string' } },
      [USAGE_HEADERS.limit]: { description: "The tier's 24-hour token limit (absent when unlimited)", schema: { type: 'integer' } },
      [USAGE_HEADERS.remaining]: { description: 'Tokens left in the 24-hour window', schema: { type: 'integer' } },
      [USAGE_HEADERS.reset]: { description: 'When the 24-hour window resets (ISO 8601)', schema: { type: 'string', format: 'date-time' } },
      [USAGE_HEADERS.dailyRemaining]: { description: 'Tokens left today (absent without a daily limit)', schema: { type: 'integer' } },
      [USAGE_HEADERS.monthlyRemaining]: { description: 'USD left this month (absent without a monthly cost limit)', schema: { type: 'string', example: '0.950000' } },
    }),
    ApiErrorResponses(AI_ERRORS),
  );
}
