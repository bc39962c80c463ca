import { Injectable, Logger, OnApplicationBootstrap, OnApplicationShutdown } from '@nestjs/common';
import { InjectConnection } from '@nestjs/mongoose';
import { Connection } from 'mongoose';
import { InvalidUsageRecordError, TokenTrackingService } from '../token-tracking.service';
import { DrainResult, ReplayOutcome, UsageOutbox } from './usage-outbox';
import type { OutboxEntry } from './outbox-entry';

const REPLAY_INTERVAL_MS = 1_000;

/**
 * Replays the outbox into the ledger: at boot, every second while it holds records, and as
 * soon as the MongoDB connection comes back. Each entry goes through trackTokenUsage, which
 * counts a record id once, so an entry whose first write landed after all adds nothing.
 */
@Injectable()
export class UsageOutboxReplayer implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger(UsageOutboxReplayer.name);
  private timer?: NodeJS.Timeout;
  private stopped = false;
  private failing = false;
  private readonly onConnected = () => void this.replay();

  constructor(
    private readonly outbox: UsageOutbox,
    private readonly tracking: TokenTrackingService,
    @InjectConnection() private readonly connection: Connection,
  ) {}

  onApplicationBootstrap(): void {
    this.connection.on('connected', this.onConnected);
    this.connection.on('reconnected', this.onConnected);
    this.timer = setInterval(() => void this.replay(), REPLAY_INTERVAL_MS);
    this.timer.unref();
    void this.replay();
  }

  onApplicationShutdown(): void {
    this.stopped = true;
    clearInterval(this.timer);
    this.connection.off('connected', this.onConnected);
    this.connection.off('reconnected', this.onConnected);
  }

  /** One replay pass (joins the pass in progress); resolves when it stops. */
  async replay(): Promise<DrainResult | undefined> {
    if (this.stopped || this.outbox.isEmpty) return undefined;
    const started = Date.now();
    let duplicates = 0;
    const result = await this.outbox.drain(async (entry) => {
      const outcome = await this.apply(entry);
      if (outcome === 'duplicate') duplicates += 1;
      return outcome === 'rejected' ? 'rejected' : 'applied';
    });
    if (result.replayed + result.rejected > 0) {
      this.logger.log(
        `Replayed ${result.replayed} outbox record(s) into the ledger in ${Date.now() - started} ms ` +
          `(${duplicates} already applied, ${result.rejected} set aside, ${result.remaining} left)`,
      );
    }
    if (result.error && !this.failing) {
      const message = result.error instanceof Error ? result.error.message : String(result.error);
      this.logger.warn(`Outbox replay paused with ${result.remaining} record(s) left: ${message}; retrying every ${REPLAY_INTERVAL_MS} ms`);
    }
    this.failing = result.error !== undefined;
    return result;
  }

  private async apply(entry: OutboxEntry): Promise<ReplayOutcome | 'duplicate'> {
    try {
      const result = await this.tracking.applyRecord(entry.userId, entry.record);
      return result.delta.requestCount === 0 ? 'duplicate' : 'applied';
    } catch (error) {
      // A record the ledger can never accept would block every record behind it.
      if (error instanceof InvalidUsageRecordError) return 'rejected';
      throw error;
    }
  }
}
