import { Injectable, Logger, OnApplicationBootstrap, OnApplicationShutdown } from '@nestjs/common';
import { appendFile, mkdir, readdir, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { Clock } from '../common/clock';
import { AppConfig } from '../config/app-config';
import { UsageCalendar } from '../token-tracking/usage-calendar';
import type { UsageEventView } from './usage-event.mapper';

const FLUSH_INTERVAL_MS = 1_000;
/** Flush early once this many lines are waiting. */
const FLUSH_AT_LINES = 500;
/** Lines kept for a retry after a failed write; beyond this the oldest are dropped (the database has them). */
const MAX_BUFFERED_LINES = 50_000;
const CLEANUP_INTERVAL_MS = 6 * 3_600_000;
const LOG_FILE = /^token_usage_(\d{4}-\d{2}-\d{2})\.jsonl$/;

export const usageLogFileName = (day: string) => `token_usage_${day}.jsonl`;

/**
 * The seed 004 per-day JSONL usage log. Events are buffered in memory and appended by a
 * timer (or when many are waiting), so a request never waits on the disk; shutdown flushes.
 */
@Injectable()
export class UsageLogWriter implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger(UsageLogWriter.name);
  private readonly calendar: UsageCalendar;
  private pending: { day: string; line: string }[] = [];
  private flushing?: Promise<void>;
  private flushTimer?: NodeJS.Timeout;
  private cleanupTimer?: NodeJS.Timeout;
  private lastErrorLoggedAt = 0;

  constructor(
    private readonly config: AppConfig,
    private readonly clock: Clock,
  ) {
    this.calendar = new UsageCalendar(config.USAGE_TIMEZONE);
  }

  get enabled(): boolean {
    return this.config.USAGE_LOG_FILE;
  }

  onApplicationBootstrap(): void {
    if (!this.enabled) return;
    void this.cleanup();
    this.cleanupTimer = setInterval(() => void this.cleanup(), CLEANUP_INTERVAL_MS).unref();
  }

  async onApplicationShutdown(): Promise<void> {
    clearInterval(this.cleanupTimer);
    clearTimeout(this.flushTimer);
    await this.flush();
  }

  append(event: UsageEventView): void {
    if (!this.enabled) return;
    this.pending.push({ day: this.calendar.dayKey(new Date(event.timestamp)), line: `${JSON.stringify(event)}\n` });
    if (this.pending.length >= FLUSH_AT_LINES) void this.flush();
    else this.flushTimer ??= setTimeout(() => void this.flush(), FLUSH_INTERVAL_MS).unref();
  }

  /** Writes everything buffered so far; resolves when it is on disk (or has failed and been kept). */
  async flush(): Promise<void> {
    while (this.flushing) await this.flushing;
    clearTimeout(this.flushTimer);
    this.flushTimer = undefined;
    if (this.pending.length === 0) return;
    const batch = this.pending;
    this.pending = [];
    this.flushing = this.write(batch).finally(() => (this.flushing = undefined));
    await this.flushing;
  }

  /** Deletes log files whose day is older than USAGE_LOG_RETENTION_DAYS; returns the names deleted. */
  async cleanup(): Promise<string[]> {
    const cutoff = this.calendar.retentionCutoffDay(new Date(this.clock.now()), this.config.USAGE_LOG_RETENTION_DAYS);
    let names: string[];
    try {
      names = await readdir(this.config.LOG_DIR);
    } catch {
      return [];
    }
    const expired = names.filter((name) => {
      const day = LOG_FILE.exec(name)?.[1];
      return day !== undefined && day < cutoff;
    });
    const deleted: string[] = [];
    for (const name of expired) {
      await unlink(join(this.config.LOG_DIR, name)).then(
        () => deleted.push(name),
        (error: Error) => this.logger.warn(`Could not delete old usage log ${name}: ${error.message}`),
      );
    }
    if (deleted.length > 0) this.logger.log(`Deleted ${deleted.length} usage log file(s) older than ${cutoff}`);
    return deleted;
  }

  private async write(batch: { day: string; line: string }[]): Promise<void> {
    const byDay = new Map<string, string[]>();
    for (const { day, line } of batch) {
      const lines = byDay.get(day);
      if (lines) lines.push(line);
      else byDay.set(day, [line]);
    }
    try {
      await mkdir(this.config.LOG_DIR, { recursive: true });
    } catch (error) {
      this.keep(batch, error);
      return;
    }
    for (const [day, lines] of byDay) {
      try {
        await appendFile(join(this.config.LOG_DIR, usageLogFileName(day)), lines.join(''), 'utf8');
      } catch (error) {
        this.keep(lines.map((line) => ({ day, line })), error);
      }
    }
  }

  private keep(lines: { day: string; line: string }[], error: unknown): void {
    this.pending = [...lines, ...this.pending].slice(-MAX_BUFFERED_LINES);
    const now = Date.now();
    if (now - this.lastErrorLoggedAt > 30_000) {
      this.lastErrorLoggedAt = now;
      this.logger.warn(`Writing the usage log in ${this.config.LOG_DIR} failed (${(error as Error).message}); will retry`);
    }
    this.flushTimer ??= setTimeout(() => void this.flush(), FLUSH_INTERVAL_MS * 5).unref();
  }
}
