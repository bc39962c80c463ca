import { HttpException, HttpStatus, Injectable, Logger } from '@nestjs/common';
import type { FastifyReply } from 'fastify';
import { RateLimiterMemory, RateLimiterRedis, RateLimiterRes } from 'rate-limiter-flexible';
import { AppConfig } from '../config/app-config';
import { RedisService } from '../redis/redis.service';
import type { Principal, Role } from './principal';

const WINDOW_SECONDS = 60;

/**
 * Requests per minute per API key, counted in Redis so every instance shares one budget.
 * rate-limiter-flexible's insurance limiter counts in process while Redis is down (then each
 * instance allows the full budget on its own), so an outage neither blocks nor unlimits traffic.
 */
@Injectable()
export class RateLimitService {
  private readonly logger = new Logger(RateLimitService.name);
  private readonly limiters = new Map<Role, { points: number; limiter: RateLimiterRedis }>();

  constructor(config: AppConfig, redis: RedisService) {
    const pointsFor: Record<Role, number> = {
      admin: config.RATE_LIMIT_PER_MINUTE,
      service: config.RATE_LIMIT_SERVICE_PER_MINUTE ?? config.RATE_LIMIT_PER_MINUTE,
      user: config.RATE_LIMIT_PER_MINUTE,
    };
    for (const [role, points] of Object.entries(pointsFor) as Array<[Role, number]>) {
      if (points === 0) continue;
      const limiter = new RateLimiterRedis({
        storeClient: redis.client,
        // The client adds REDIS_KEY_PREFIX, so deployments sharing one Redis keep separate budgets.
        keyPrefix: `ratelimit:${role}`,
        points,
        duration: WINDOW_SECONDS,
        rejectIfRedisNotReady: true,
        insuranceLimiter: new RateLimiterMemory({ keyPrefix: `ratelimit-local:${role}`, points, duration: WINDOW_SECONDS }),
      });
      this.limiters.set(role, { points, limiter });
    }
  }

  /** Counts one request for the principal's key; throws 429 (with Retry-After) over the limit. */
  async consume(principal: Principal, reply: FastifyReply): Promise<void> {
    const entry = this.limiters.get(principal.role);
    if (!entry) return;
    let result: RateLimiterRes;
    try {
      result = await entry.limiter.consume(principal.keyId);
    } catch (rejection) {
      if (!(rejection instanceof RateLimiterRes)) {
        // Both stores failed: a rate limiter is no reason to refuse service.
        this.logger.warn(`Rate limiting skipped: ${(rejection as Error)?.message ?? rejection}`);
        return;
      }
      const retryAfterSeconds = Math.max(1, Math.ceil(rejection.msBeforeNext / 1000));
      setHeaders(reply, entry.points, 0, retryAfterSeconds);
      throw new HttpException(
        {
          statusCode: HttpStatus.TOO_MANY_REQUESTS,
          error: 'Too Many Requests',
          message: `rate limit of ${entry.points} requests per minute reached for this API key; retry in ${retryAfterSeconds} s`,
          retryAfterSeconds,
        },
        HttpStatus.TOO_MANY_REQUESTS,
      );
    }
    setHeaders(reply, entry.points, result.remainingPoints, Math.max(1, Math.ceil(result.msBeforeNext / 1000)));
  }
}

function setHeaders(reply: FastifyReply, limit: number, remaining: number, resetSeconds: number): void {
  reply.header('x-ratelimit-limit', String(limit));
  reply.header('x-ratelimit-remaining', String(Math.max(0, remaining)));
  reply.header('x-ratelimit-reset', String(resetSeconds));
}
