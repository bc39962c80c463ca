import { crc32 } from 'node:zlib';
import type { UsageRecord } from '../usage-record';

/** A usage record whose ledger write failed, with the identity that makes its replay idempotent. */
export interface OutboxEntry {
  userId: string;
  record: UsageRecord & { recordId: string; occurredAt: Date };
  queuedAt: Date;
}

const FORMAT_VERSION = 1;

export class CorruptOutboxLineError extends Error {}

/**
 * One entry per line: `<crc32 of the JSON, 8 hex digits> <JSON>\n`. The checksum tells a
 * torn or damaged line (crash mid-write, disk trouble) from a record, so a bad line is set
 * aside instead of being replayed as something else.
 */
export function encodeEntry(entry: OutboxEntry): Buffer {
  const json = JSON.stringify({ v: FORMAT_VERSION, userId: entry.userId, queuedAt: entry.queuedAt.toISOString(), record: entry.record });
  return Buffer.from(`${checksum(json)} ${json}\n`, 'utf8');
}

/** Decodes one line (without its newline); throws CorruptOutboxLineError when it is not an intact entry. */
export function decodeEntry(line: string): OutboxEntry {
  const match = /^([0-9a-f]{8}) (.*)$/s.exec(line);
  if (!match) throw new CorruptOutboxLineError('not an outbox line');
  const [, sum, json] = match;
  if (checksum(json) !== sum) throw new CorruptOutboxLineError('checksum mismatch');
  let parsed: { v?: unknown; userId?: unknown; queuedAt?: unknown; record?: Record<string, unknown> };
  try {
    parsed = JSON.parse(json) as typeof parsed;
  } catch {
    throw new CorruptOutboxLineError('invalid JSON');
  }
  const record = parsed.record;
  if (
    parsed.v !== FORMAT_VERSION ||
    typeof parsed.userId !== 'string' ||
    typeof parsed.queuedAt !== 'string' ||
    !record ||
    typeof record.recordId !== 'string' ||
    typeof record.occurredAt !== 'string'
  ) {
    throw new CorruptOutboxLineError(`unsupported entry (format version ${String(parsed.v)})`);
  }
  return {
    userId: parsed.userId,
    queuedAt: new Date(parsed.queuedAt),
    record: { ...(record as unknown as UsageRecord), recordId: record.recordId, occurredAt: new Date(record.occurredAt) },
  };
}

function checksum(text: string): string {
  return crc32(text).toString(16).padStart(8, '0');
}
