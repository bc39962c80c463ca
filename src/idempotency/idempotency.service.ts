import { ConflictException, HttpException, Injectable, Logger, UnprocessableEntityException } from '@nestjs/common';
import { InjectModel } from '@nestjs/mongoose';
import { createHash } from 'node:crypto';
import { Model } from 'mongoose';
import { Clock } from '../common/clock';
import { withinDeadline } from '../common/deadline';
import { AppConfig } from '../config/app-config';
import { IdempotencyRecord } from './idempotency-record.schema';
import { MAX_STORED_BODY_BYTES, packBody, storedSize, unpackBody } from './stored-body';

export const IDEMPOTENCY_KEY_PATTERN = /^[A-Za-z0-9_.:-]{1,128}$/;
const KEY_LIFETIME_MS = 24 * 60 * 60 * 1000;
const POLL_MS = 25;
const DUPLICATE_KEY = 11000;
/** Keys claimed in process while MongoDB is unreachable (bounded; the oldest are dropped first). */
const MAX_LOCAL_CLAIMS = 10_000;

interface Outcome {
  statusCode: number;
  /** Packed (stored-body.ts). */
  body?: unknown;
  /** Set instead of body when the packed body was larger than MAX_STORED_BODY_BYTES. */
  bodyTooLargeBytes?: number;
}

interface LocalClaim {
  fingerprint: string;
  expiresAt: number;
  outcome?: Outcome;
}

export type Claim =
  | { kind: 'first'; id: string }
  | { kind: 'replay'; statusCode: number; body: unknown };

/** Sorted keys, so the same body always hashes the same whatever the client's key order. */
function canonical(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(canonical);
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.keys(value as object).sort().map((key) => [key, canonical((value as Record<string, unknown>)[key])]));
  }
  return value;
}

export function requestFingerprint(method: string, route: string, body: unknown): string {
  return createHash('sha256').update(`${method} ${route}\n${JSON.stringify(canonical(body ?? null))}`).digest('hex');
}

/**
 * Idempotency-Key claims in MongoDB (unique _id, TTL-expired after 24 h): the first
 * request with a key runs; retries with the same key and body get its stored response;
 * concurrent retries wait for it; the same key with another body is a 422.
 *
 * While MongoDB cannot be reached within MONGODB_READ_TIMEOUT_MS the request is not
 * refused: the key is claimed in process instead, so retries reaching this instance are
 * still answered once (replayed, 409 while in progress, 422 for another body); a retry
 * reaching another instance during the outage runs again.
 */
@Injectable()
export class IdempotencyService {
  private readonly logger = new Logger(IdempotencyService.name);
  private readonly local = new Map<string, LocalClaim>();

  constructor(
    @InjectModel(IdempotencyRecord.name) private readonly records: Model<IdempotencyRecord>,
    private readonly config: AppConfig,
    private readonly clock: Clock,
  ) {}

  async claim(scope: string, key: string, fingerprint: string): Promise<Claim> {
    const id = `${scope}|${key}`;
    const deadline = Date.now() + this.config.AI_TIMEOUT_MS * 2 + 5_000;
    for (;;) {
      // A retry of a request this instance claimed in process waits for it, like one claimed in MongoDB.
      const held = this.localOutcome(id, key, fingerprint);
      if (held === 'pending') {
        if (Date.now() > deadline) throw new ConflictException(`A request with Idempotency-Key "${key}" is still in progress`);
        await new Promise((resolve) => setTimeout(resolve, POLL_MS));
        continue;
      }
      if (held) return replayOf(key, held);
      try {
        return await this.claimStored(id, key, fingerprint, deadline);
      } catch (error) {
        if (error instanceof HttpException) throw error;
        // A concurrent request with this key was claimed in process meanwhile: wait for it.
        if (this.local.has(id)) continue;
        this.logger.warn(`Idempotency store unavailable (${(error as Error).message}); key "${key}" claimed in process`);
        this.local.set(id, { fingerprint, expiresAt: this.clock.now() + KEY_LIFETIME_MS });
        if (this.local.size > MAX_LOCAL_CLAIMS) this.local.delete(this.local.keys().next().value!);
        return { kind: 'first', id };
      }
    }
  }

  /**
   * Keeps the first response for replays. One whose stored form would pass MAX_STORED_BODY_BYTES
   * (MongoDB refuses documents over 16 MiB) is not kept: the key stays used, and a retry with it
   * gets a 409 saying so instead of running the request again.
   */
  async complete(id: string, statusCode: number, body: unknown): Promise<void> {
    const packed = await packBody(body);
    const bytes = storedSize(packed);
    const outcome: Outcome = bytes > MAX_STORED_BODY_BYTES ? { statusCode, bodyTooLargeBytes: bytes } : { statusCode, body: packed };
    if (outcome.bodyTooLargeBytes) this.logger.warn(`Response of ${bytes} bytes not kept for replays of idempotency record ${id}`);
    const local = this.local.get(id);
    // A claim that timed out may still have landed: it is completed in MongoDB too, for retries elsewhere.
    if (local) local.outcome = outcome;
    await this.stored(() => this.records.collection.updateOne({ _id: id as never }, { $set: { state: 'done', ...outcome } }), 'idempotency write').catch(
      (error: Error) => this.logger.warn(`Idempotency record not completed (${error.message}); a retry may run again`),
    );
  }

  /** A failed first request frees its key, so the client's retry runs again. */
  async release(id: string): Promise<void> {
    this.local.delete(id);
    await this.stored(() => this.records.collection.deleteOne({ _id: id as never, state: 'pending' }), 'idempotency release').catch(
      (error: Error) => this.logger.warn(`Idempotency record not released (${error.message})`),
    );
  }

  /** The outcome of a key claimed in process: 'pending' while its request runs, none when it is not claimed here (or has expired). */
  private localOutcome(id: string, key: string, fingerprint: string): Outcome | 'pending' | undefined {
    const local = this.local.get(id);
    if (!local) return undefined;
    if (local.expiresAt <= this.clock.now()) {
      this.local.delete(id);
      return undefined;
    }
    if (local.fingerprint !== fingerprint) throw new UnprocessableEntityException(`Idempotency-Key "${key}" was already used with a different request`);
    return local.outcome ?? 'pending';
  }

  private stored<T>(run: () => Promise<T>, what: string): Promise<T> {
    return withinDeadline(this.records.db, this.config.MONGODB_READ_TIMEOUT_MS, what, run);
  }

  private async claimStored(id: string, key: string, fingerprint: string, deadline: number): Promise<Claim> {
    for (;;) {
      const now = new Date(this.clock.now());
      try {
        await this.stored(
          () => this.records.collection.insertOne({ _id: id as never, fingerprint, state: 'pending', createdAt: now, expiresAt: new Date(now.getTime() + KEY_LIFETIME_MS) }),
          'idempotency claim',
        );
        return { kind: 'first', id };
      } catch (error) {
        if ((error as { code?: unknown }).code !== DUPLICATE_KEY) throw error;
      }
      const existing = await this.stored(() => this.records.collection.findOne({ _id: id as never }), 'idempotency read');
      if (!existing) continue; // released between our insert and read: claim again
      if (existing.fingerprint !== fingerprint) {
        throw new UnprocessableEntityException(`Idempotency-Key "${key}" was already used with a different request`);
      }
      if (existing.state === 'done') {
        return replayOf(key, { statusCode: existing.statusCode as number, body: existing.body, bodyTooLargeBytes: (existing.bodyTooLargeBytes as number | null) ?? undefined });
      }
      // The first request may have run on a claim made in process (its insert timed out, then landed).
      const local = this.local.get(id);
      if (local?.outcome) return replayOf(key, local.outcome);
      if (Date.now() > deadline) throw new ConflictException(`A request with Idempotency-Key "${key}" is still in progress`);
      await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    }
  }
}

async function replayOf(key: string, outcome: Outcome): Promise<Claim> {
  if (outcome.bodyTooLargeBytes !== undefined) {
    const megabytes = (outcome.bodyTooLargeBytes / 1024 / 1024).toFixed(1);
    throw new ConflictException(
      `The request with Idempotency-Key "${key}" was answered, but its response (${megabytes} MiB stored) was too large to keep for replays; it is not run again. Send it with a new key`,
    );
  }
  return { kind: 'replay', statusCode: outcome.statusCode, body: await unpackBody(outcome.body) };
}
