import { Logger } from '@nestjs/common';
import { FileHandle, mkdir, open, readdir, readFile, rename, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { decodeEntry, encodeEntry, OutboxEntry } from './outbox-entry';

const SEGMENT_FILE = /^usage-outbox-(\d{10})\.jsonl$/;
const CURSOR_FILE = 'usage-outbox.cursor';
export const REJECTED_FILE = 'usage-outbox.rejected.jsonl';

export interface UsageOutboxOptions {
  /** A segment this large is closed and the next append starts a new one, so replayed segments can be deleted. */
  maxSegmentBytes?: number;
  /** Replay progress is made durable after this many records (and whenever replay stops). */
  checkpointEvery?: number;
  /** Bytes read from a segment at a time during replay. */
  readChunkBytes?: number;
}

export interface OutboxStats {
  /** Records waiting to be replayed. */
  records: number;
  /** Bytes of those records on disk. */
  bytes: number;
  /** When the oldest waiting record was queued; null when the outbox is empty. */
  oldestQueuedAt: Date | null;
  oldestAgeMs: number | null;
  segments: number;
  /** Lines set aside in usage-outbox.rejected.jsonl by this process (corrupt, or refused by the ledger as invalid). */
  rejected: number;
}

/** Group commit figures: how many appends each write + datasync carried. */
export interface GroupCommitStats {
  commits: number;
  records: number;
  largestBatch: number;
  lastBatch: number;
}

/** What replaying one entry did: written to the ledger (or found already there), or refused for good. */
export type ReplayOutcome = 'applied' | 'rejected';

export interface DrainResult {
  replayed: number;
  rejected: number;
  remaining: number;
  /** Why replay stopped early (the first failed entry stays first in line). */
  error?: unknown;
}

interface Segment {
  seq: number;
  path: string;
  /** Bytes known to be on disk (fsynced, or present at boot). */
  size: number;
}

interface PendingAppend {
  bytes: Buffer;
  queuedAt: number;
  resolve(): void;
  reject(error: Error): void;
}

interface Line {
  text: string;
  /** Offset just past this line's newline. */
  end: number;
}

const DEFAULTS: Required<UsageOutboxOptions> = { maxSegmentBytes: 8 * 1024 * 1024, checkpointEvery: 64, readChunkBytes: 1024 * 1024 };

/**
 * The ledger's durable outbox: usage records whose ledger write failed, in append-only
 * segment files under one directory, replayed in file order once the ledger is back.
 *
 * - append() resolves only after the record is written and fdatasync'ed. Appends arriving
 *   while a write is in progress are batched into the next write (group commit).
 * - Replay progress is a cursor file (segment, offset) replaced atomically (temp, fsync,
 *   rename). A segment is deleted once fully replayed; segments older than the cursor's are
 *   consumed by construction, and sequence numbers never go back, so a stale cursor can
 *   never point into a newer segment.
 * - Existing segments are never appended to after a restart: a torn last line left by a
 *   crash stays at the end of a closed segment, where replay sets it aside.
 */
export class UsageOutbox {
  private readonly logger = new Logger(UsageOutbox.name);
  private readonly options: Required<UsageOutboxOptions>;
  private segments: Segment[] = [];
  /** Replay position in segments[0]. */
  private readOffset = 0;
  private cursorDirty = false;
  private nextSeq = 1;
  private active?: { segment: Segment; handle: FileHandle };
  private pending: PendingAppend[] = [];
  private flushing?: Promise<void>;
  private lock: Promise<unknown> = Promise.resolve();
  private draining?: Promise<DrainResult>;
  private closing = false;
  private closed = false;
  /** queuedAt (ms) of every waiting line in file order; null for a line that does not decode. */
  private queued: (number | null)[] = [];
  private queuedHead = 0;
  private rejectedLines = 0;
  private readonly commits: GroupCommitStats = { commits: 0, records: 0, largestBatch: 0, lastBatch: 0 };

  private constructor(
    readonly dir: string,
    options: UsageOutboxOptions,
  ) {
    this.options = { ...DEFAULTS, ...options };
  }

  /** Opens (creating if needed) the outbox in `dir`, recovering whatever a previous process left. */
  static async open(dir: string, options: UsageOutboxOptions = {}): Promise<UsageOutbox> {
    const outbox = new UsageOutbox(dir, options);
    await outbox.recover();
    return outbox;
  }

  /** Appends one entry; resolves once it is durable on disk. */
  append(entry: OutboxEntry): Promise<void> {
    if (this.closed) return Promise.reject(new Error('usage outbox is closed'));
    const bytes = encodeEntry(entry);
    return new Promise<void>((resolve, reject) => {
      this.pending.push({ bytes, queuedAt: entry.queuedAt.getTime(), resolve, reject });
      this.flushing ??= this.flushLoop();
    });
  }

  /**
   * Replays waiting entries in order through `apply` until the outbox is empty, `apply`
   * throws (that entry stays first in line) or the outbox closes. One pass at a time:
   * a call during a pass gets that pass's result.
   */
  drain(apply: (entry: OutboxEntry) => Promise<ReplayOutcome>): Promise<DrainResult> {
    this.draining ??= this.drainPass(apply).finally(() => (this.draining = undefined));
    return this.draining;
  }

  get isEmpty(): boolean {
    return this.queued.length - this.queuedHead === 0;
  }

  stats(now = Date.now()): OutboxStats {
    const records = this.queued.length - this.queuedHead;
    const bytes = this.segments.reduce((sum, segment) => sum + segment.size, 0) - (this.segments.length > 0 ? this.readOffset : 0);
    let oldest: number | null = null;
    for (let i = this.queuedHead; i < this.queued.length && oldest === null; i += 1) oldest = this.queued[i];
    return {
      records,
      bytes,
      oldestQueuedAt: oldest === null ? null : new Date(oldest),
      oldestAgeMs: oldest === null ? null : Math.max(0, now - oldest),
      segments: this.segments.length,
      rejected: this.rejectedLines,
    };
  }

  groupCommitStats(): GroupCommitStats {
    return { ...this.commits };
  }

  /** Finishes pending appends and the replay pass in progress, then closes the files. Nothing else is lost: it is all on disk. */
  async close(): Promise<void> {
    this.closing = true;
    await this.draining?.catch(() => undefined);
    while (this.flushing) await this.flushing;
    this.closed = true;
    await this.exclusive(() => this.closeActive());
  }

  private async recover(): Promise<void> {
    await mkdir(this.dir, { recursive: true });
    const cursor = await this.readCursor();
    const found: Segment[] = [];
    for (const name of await readdir(this.dir)) {
      const match = SEGMENT_FILE.exec(name);
      if (!match) continue;
      const path = join(this.dir, name);
      found.push({ seq: Number(match[1]), path, size: (await stat(path)).size });
    }
    found.sort((a, b) => a.seq - b.seq);
    this.nextSeq = Math.max(cursor?.seq ?? 0, ...found.map((segment) => segment.seq)) + 1;

    for (const segment of found) {
      if (cursor && segment.seq < cursor.seq) {
        // Fully replayed before the crash (the cursor only ever names the oldest segment).
        await unlink(segment.path);
        continue;
      }
      this.segments.push(segment);
    }
    const first = this.segments[0];
    this.readOffset = first && cursor && first.seq === cursor.seq ? Math.min(cursor.offset, first.size) : 0;

    for (const [index, segment] of this.segments.entries()) {
      const from = index === 0 ? this.readOffset : 0;
      const text = (await readFile(segment.path)).subarray(from).toString('utf8');
      const lines = text.split('\n');
      if (lines[lines.length - 1] === '') lines.pop();
      for (const line of lines) {
        try {
          this.queued.push(decodeEntry(line).queuedAt.getTime());
        } catch {
          this.queued.push(null);
        }
      }
    }
    if (!this.isEmpty) {
      const stats = this.stats();
      this.logger.warn(`Outbox holds ${stats.records} unreplayed usage record(s) (${stats.bytes} bytes) from an earlier run; replaying once MongoDB answers`);
    }
  }

  private async flushLoop(): Promise<void> {
    // Let appends issued in the same turn join the first write.
    await new Promise((resolve) => setImmediate(resolve));
    try {
      while (this.pending.length > 0) {
        const batch = this.pending.splice(0);
        try {
          await this.exclusive(() => this.writeBatch(batch));
          for (const append of batch) append.resolve();
        } catch (error) {
          const failure = error instanceof Error ? error : new Error(String(error));
          for (const append of batch) append.reject(failure);
        }
      }
    } finally {
      this.flushing = undefined;
    }
  }

  private async writeBatch(batch: PendingAppend[]): Promise<void> {
    const { segment, handle } = await this.activeSegment();
    const buffer = Buffer.concat(batch.map((append) => append.bytes));
    const start = segment.size;
    try {
      let written = 0;
      while (written < buffer.length) {
        const { bytesWritten } = await handle.write(buffer, written, buffer.length - written, start + written);
        written += bytesWritten;
      }
      await handle.datasync();
    } catch (error) {
      // Leave no partial line for later appends to follow, and after a failed fsync trust this file no further.
      await handle.truncate(start).catch(() => undefined);
      await this.closeActive().catch(() => undefined);
      throw error;
    }
    segment.size = start + buffer.length;
    for (const append of batch) this.queued.push(append.queuedAt);
    this.commits.commits += 1;
    this.commits.records += batch.length;
    this.commits.lastBatch = batch.length;
    this.commits.largestBatch = Math.max(this.commits.largestBatch, batch.length);
    if (segment.size >= this.options.maxSegmentBytes) await this.closeActive();
  }

  private async activeSegment(): Promise<{ segment: Segment; handle: FileHandle }> {
    if (this.active) return this.active;
    const seq = this.nextSeq++;
    const segment: Segment = { seq, path: join(this.dir, `usage-outbox-${String(seq).padStart(10, '0')}.jsonl`), size: 0 };
    const handle = await open(segment.path, 'wx');
    await syncDirectory(this.dir);
    this.segments.push(segment);
    this.active = { segment, handle };
    return this.active;
  }

  private async closeActive(): Promise<void> {
    const active = this.active;
    this.active = undefined;
    await active?.handle.close();
  }

  private async drainPass(apply: (entry: OutboxEntry) => Promise<ReplayOutcome>): Promise<DrainResult> {
    const result: DrainResult = { replayed: 0, rejected: 0, remaining: 0 };
    let sinceCheckpoint = 0;
    try {
      while (!this.closing) {
        const segment = this.segments[0];
        if (!segment) break;
        if (this.readOffset < segment.size) {
          for (const line of await this.readLines(segment)) {
            if (this.closing) break;
            let entry: OutboxEntry | undefined;
            let reason = '';
            try {
              entry = decodeEntry(line.text);
            } catch (error) {
              reason = (error as Error).message;
            }
            if (entry && (await apply(entry)) === 'rejected') reason = 'refused by the ledger';
            if (reason) {
              await this.setAside(line.text, reason);
              result.rejected += 1;
            } else {
              result.replayed += 1;
            }
            this.readOffset = line.end;
            this.cursorDirty = true;
            this.queuedHead = Math.min(this.queuedHead + 1, this.queued.length);
            if (++sinceCheckpoint >= this.options.checkpointEvery) {
              await this.saveCursor();
              sinceCheckpoint = 0;
            }
          }
          continue;
        }
        if (!(await this.exclusive(() => this.removeIfReplayed(segment)))) break;
      }
    } catch (error) {
      result.error = error;
    } finally {
      await this.saveCursor().catch((error: unknown) => this.logger.error(`Saving the outbox cursor failed: ${String(error)}`));
      this.compactQueue();
    }
    result.remaining = this.queued.length - this.queuedHead;
    return result;
  }

  /** Complete lines of segments[0] from the read offset (one chunk); a torn tail of a closed segment counts as a line. */
  private async readLines(segment: Segment): Promise<Line[]> {
    const from = this.readOffset;
    const length = Math.min(segment.size - from, this.options.readChunkBytes);
    const buffer = Buffer.alloc(length);
    const handle = await open(segment.path, 'r');
    try {
      let read = 0;
      while (read < length) {
        const { bytesRead } = await handle.read(buffer, read, length - read, from + read);
        if (bytesRead === 0) break;
        read += bytesRead;
      }
    } finally {
      await handle.close();
    }
    const lines: Line[] = [];
    let start = 0;
    for (let newline = buffer.indexOf(10); newline !== -1; newline = buffer.indexOf(10, start)) {
      lines.push({ text: buffer.subarray(start, newline).toString('utf8'), end: from + newline + 1 });
      start = newline + 1;
    }
    const atEnd = from + length === segment.size;
    const closedSegment = segment !== this.active?.segment;
    // Bytes after the last newline: the torn end of a crashed write, or a line longer than a chunk.
    if (start < length && ((atEnd && closedSegment) || lines.length === 0)) {
      lines.push({ text: buffer.subarray(start).toString('utf8'), end: from + length });
    }
    return lines;
  }

  /** Deletes segments[0] once everything in it is replayed. False when it is still being appended to. */
  private async removeIfReplayed(segment: Segment): Promise<boolean> {
    if (this.segments[0] !== segment || this.readOffset < segment.size) return true;
    if (segment === this.active?.segment) {
      if (this.pending.length > 0) return false;
      await this.closeActive();
    }
    await unlink(segment.path);
    await syncDirectory(this.dir);
    this.segments.shift();
    this.readOffset = 0;
    // The cursor may still name the deleted segment: older than every remaining one, so it reads as "all consumed".
    this.cursorDirty = false;
    return true;
  }

  private async saveCursor(): Promise<void> {
    const segment = this.segments[0];
    if (!this.cursorDirty || !segment) return;
    const path = join(this.dir, CURSOR_FILE);
    const temporary = `${path}.tmp`;
    const handle = await open(temporary, 'w');
    try {
      await handle.writeFile(JSON.stringify({ seq: segment.seq, offset: this.readOffset }));
      await handle.datasync();
    } finally {
      await handle.close();
    }
    await rename(temporary, path);
    await syncDirectory(this.dir);
    this.cursorDirty = false;
  }

  private async readCursor(): Promise<{ seq: number; offset: number } | undefined> {
    let text: string;
    try {
      text = await readFile(join(this.dir, CURSOR_FILE), 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw error;
    }
    try {
      const cursor = JSON.parse(text) as { seq?: unknown; offset?: unknown };
      if (Number.isSafeInteger(cursor.seq) && Number.isSafeInteger(cursor.offset)) return cursor as { seq: number; offset: number };
    } catch {
      // fall through
    }
    // Written by rename, so never torn; if it is unreadable anyway, replay from the start and let record ids dedupe.
    this.logger.error(`Outbox cursor ${CURSOR_FILE} is unreadable; replaying every segment from its start`);
    return undefined;
  }

  /** Keeps a line that cannot be replayed (corrupt, or invalid for the ledger) where an operator can see it. */
  private async setAside(line: string, reason: string): Promise<void> {
    const handle = await open(join(this.dir, REJECTED_FILE), 'a');
    try {
      await handle.write(`${JSON.stringify({ rejectedAt: new Date().toISOString(), reason, line })}\n`);
      await handle.datasync();
    } finally {
      await handle.close();
    }
    this.rejectedLines += 1;
    this.logger.error(`Outbox line set aside in ${REJECTED_FILE} (${reason})`);
  }

  private compactQueue(): void {
    if (this.queuedHead > 1024 && this.queuedHead * 2 > this.queued.length) {
      this.queued = this.queued.slice(this.queuedHead);
      this.queuedHead = 0;
    }
  }

  private exclusive<T>(task: () => Promise<T>): Promise<T> {
    const run = this.lock.then(task, task);
    this.lock = run.catch(() => undefined);
    return run;
  }
}

/** Makes a file's creation, rename or deletion durable (POSIX); a no-op where directories cannot be synced. */
async function syncDirectory(dir: string): Promise<void> {
  let handle: FileHandle | undefined;
  try {
    handle = await open(dir, 'r');
    await handle.sync();
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code !== 'EISDIR' && code !== 'EPERM' && code !== 'EINVAL') throw error;
  } finally {
    await handle?.close();
  }
}
