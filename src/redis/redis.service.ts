import { Injectable, Logger, OnApplicationShutdown, OnModuleInit } from '@nestjs/common';
import Redis from 'ioredis';
import { AppConfig } from '../config/app-config';

/**
 * The shared Redis connection. Redis is optional: while it is down, callers see
 * `isReady === false` and degrade (the rolling window reports tracking_enabled: false);
 * ioredis reconnects in the background.
 */
@Injectable()
export class RedisService implements OnModuleInit, OnApplicationShutdown {
  private readonly logger = new Logger(RedisService.name);
  readonly client: Redis;
  private lastErrorLoggedAt = 0;

  constructor(config: AppConfig) {
    this.client = new Redis(config.REDIS_URL, {
      lazyConnect: true,
      keyPrefix: config.REDIS_KEY_PREFIX,
      enableOfflineQueue: false,
      // Commands issued in the same tick (rate limit, reserve, settle of concurrent requests) share one socket write.
      enableAutoPipelining: true,
      maxRetriesPerRequest: 1,
      connectTimeout: 2_000,
      retryStrategy: (attempt) => Math.min(attempt * 250, 2_000),
    });
    this.client.on('error', (error: Error) => {
      const now = Date.now();
      if (now - this.lastErrorLoggedAt > 30_000) {
        this.lastErrorLoggedAt = now;
        this.logger.warn(`Redis unavailable (${error.message}); retrying in the background`);
      }
    });
    this.client.on('ready', () => this.logger.log('Redis connected'));
  }

  get isReady(): boolean {
    return this.client.status === 'ready';
  }

  get status(): string {
    return this.client.status;
  }

  async onModuleInit(): Promise<void> {
    await this.client.connect().catch(() => undefined);
  }

  async onApplicationShutdown(): Promise<void> {
    this.client.disconnect(false);
  }
}
