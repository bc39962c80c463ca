import { ConflictException, Injectable, UnprocessableEntityException } from '@nestjs/common';
import { InjectModel } from '@nestjs/mongoose';
import { createHash } from 'node:crypto';
import { Model } from 'mongoose';
import { Clock } from '../common/clock';
import { AppConfig } from '../config/app-config';
import { IdempotencyRecord } from './idempotency-record.schema';

export const IDEMPOTENCY_KEY_PATTERN = /^[A-Za-z0-9_.:-]{1,128}$/;
const KEY_LIFETIME_MS = 24 * 60 * 60 * 1000;
const POLL_MS = 25;
const DUPLICATE_KEY = 11000;

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
 */
@Injectable()
export class IdempotencyService {
  constructor(
    @InjectModel(IdempotencyRecord.name) private readonly records: Model<IdempotencyRecord>,
    private readonly config: AppConfig,
    private readonly clock: Clock,
  ) {}

  async claim(scope: string, key: string, fingerprint: string): Promise<Claim> {
    const id = `${scope}|${key}`;
    const deadline = Date.now() + this.config.AI_TIMEOUT_MS * 2 + 5_000;
    for (;;) {
      const now = new Date(this.clock.now());
      try {
        await this.records.collection.insertOne({ _id: id as never, fingerprint, state: 'pending', createdAt: now, expiresAt: new Date(now.getTime() + KEY_LIFETIME_MS) });
        return { kind: 'first', id };
      } catch (error) {
        if ((error as { code?: unknown }).code !== DUPLICATE_KEY) throw error;
      }
      const existing = await this.records.collection.findOne({ _id: id as never });
      if (!existing) continue; // released between our insert and read: claim again
      if (existing.fingerprint !== fingerprint) {
        throw new UnprocessableEntityException(`Idempotency-Key "${key}" was already used with a different request`);
      }
      if (existing.state === 'done') return { kind: 'replay', statusCode: existing.statusCode as number, body: existing.body };
      if (Date.now() > deadline) throw new ConflictException(`A request with Idempotency-Key "${key}" is still in progress`);
      await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    }
  }

  async complete(id: string, statusCode: number, body: unknown): Promise<void> {
    await this.records.collection.updateOne({ _id: id as never }, { $set: { state: 'done', statusCode, body } });
  }

  /** A failed first request frees its key, so the client's retry runs again. */
  async release(id: string): Promise<void> {
    await this.records.collection.deleteOne({ _id: id as never, state: 'pending' });
  }
}
