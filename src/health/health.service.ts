import { Inject, Injectable } from '@nestjs/common';
import { InjectConnection } from '@nestjs/mongoose';
import { Connection } from 'mongoose';
import { RESOLVED_DATABASE } from '../database/database.module';
import type { ResolvedDatabase } from '../database/database-resolver';
import { RedisService } from '../redis/redis.service';
import { UsageOutbox } from '../token-tracking/outbox/usage-outbox';
import { DependencyStateDto, LivenessDto, OutboxStateDto, ReadinessDto } from './health.dto';

const PING_TIMEOUT_MS = 1_500;

@Injectable()
export class HealthService {
  private readonly startedAt = Date.now();

  constructor(
    @InjectConnection() private readonly connection: Connection,
    @Inject(RESOLVED_DATABASE) private readonly database: ResolvedDatabase,
    private readonly redis: RedisService,
    private readonly outbox: UsageOutbox,
  ) {}

  liveness(): LivenessDto {
    return { status: 'ok', uptimeSeconds: Math.round((Date.now() - this.startedAt) / 1000) };
  }

  async readiness(): Promise<ReadinessDto> {
    const mongodb = await this.pingMongo();
    const redis: DependencyStateDto = { status: this.redis.isReady ? 'up' : 'down', detail: `ioredis status: ${this.redis.status}` };
    return { status: mongodb.status === 'up' ? 'ok' : 'degraded', mongodb, redis, outbox: this.outboxState() };
  }

  private outboxState(): OutboxStateDto {
    const stats = this.outbox.stats();
    return {
      records: stats.records,
      bytes: stats.bytes,
      oldestQueuedAt: stats.oldestQueuedAt?.toISOString() ?? null,
      oldestAgeSeconds: stats.oldestAgeMs === null ? null : Math.round(stats.oldestAgeMs / 1000),
    };
  }

  private async pingMongo(): Promise<DependencyStateDto> {
    const started = Date.now();
    try {
      const db = this.connection.db;
      if (!db) throw new Error('not connected');
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        db.command({ ping: 1 }),
        new Promise((_, reject) => (timer = setTimeout(() => reject(new Error('ping timed out')), PING_TIMEOUT_MS))),
      ]).finally(() => clearTimeout(timer));
      return { status: 'up', detail: this.database.description, latencyMs: Date.now() - started };
    } catch (error) {
      return { status: 'down', detail: `${this.database.description}: ${(error as Error).message}` };
    }
  }
}
