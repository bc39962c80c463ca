import { Logger } from '@nestjs/common';
import { appendFile, cp, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { UsageRecord } from '../usage-record';
import { decodeEntry, encodeEntry, OutboxEntry } from './outbox-entry';
import { REJECTED_FILE, UsageOutbox } from './usage-outbox';

const entry = (n: number, overrides: Partial<UsageRecord> = {}): OutboxEntry => ({
  userId: `user-${n % 3}`,
  queuedAt: new Date(Date.UTC(2026, 10, 23, 12, 0, 0, n)),
  record: {
    recordId: `record-${n}`,
    occurredAt: new Date(Date.UTC(2026, 10, 23, 11, 59, 0, n)),
    operationType: 'plugin_generation',
    model: 'openai/gpt-4o-mini',
    provider: 'openrouter',
    promptTokens: 100 + n,
    completionTokens: 50,
    costMicros: 7,
    costSource: 'catalog',
    latencyMs: 12,
    success: true,
    ...overrides,
  },
});

const segmentFiles = async (dir: string) => (await readdir(dir)).filter((name) => name.endsWith('.jsonl') && name !== REJECTED_FILE).sort();

/** Replays everything, collecting record ids in the order they were applied. */
async function replayAll(outbox: UsageOutbox): Promise<string[]> {
  const seen: string[] = [];
  const result = await outbox.drain(async (item) => {
    seen.push(item.record.recordId);
    return 'applied';
  });
  expect(result.error).toBeUndefined();
  return seen;
}

describe(UsageOutbox.name, () => {
  let dir: string;
  const open: UsageOutbox[] = [];
  const openOutbox = async (options?: Parameters<typeof UsageOutbox.open>[1]) => {
    const outbox = await UsageOutbox.open(dir, options);
    open.push(outbox);
    return outbox;
  };

  beforeAll(() => Logger.overrideLogger(false));

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'usage-outbox-'));
  });

  afterEach(async () => {
    await Promise.all(open.splice(0).map((outbox) => outbox.close()));
    await rm(dir, { recursive: true, force: true });
  });

  describe('entry format', () => {
    it('round-trips an entry through one checksummed line, dates included', () => {
      const original = entry(1, { embeddingTokens: 3, requestId: 'req-1' });
      const line = encodeEntry(original).toString('utf8');
      expect(line).toMatch(/^[0-9a-f]{8} \{.*\}\n$/);
      expect(decodeEntry(line.slice(0, -1))).toEqual(original);
    });

    it.each([
      ['a flipped character', (line: string) => line.replace('"promptTokens":101', '"promptTokens":901')],
      ['a torn line', (line: string) => line.slice(0, 40)],
      ['no checksum', (line: string) => line.slice(9)],
    ])('refuses %s', (_label, damage) => {
      const line = encodeEntry(entry(1)).toString('utf8').slice(0, -1);
      expect(() => decodeEntry(damage(line))).toThrow();
    });
  });

  it('resolves an append only once the entry is in the file, and reports size and age', async () => {
    const outbox = await openOutbox();
    expect(outbox.stats()).toMatchObject({ records: 0, bytes: 0, oldestQueuedAt: null, oldestAgeMs: null });
    await outbox.append(entry(1));
    await outbox.append(entry(2));

    const [file] = await segmentFiles(dir);
    const text = await readFile(join(dir, file), 'utf8');
    expect(text.trimEnd().split('\n').map((line) => decodeEntry(line).record.recordId)).toEqual(['record-1', 'record-2']);
    const stats = outbox.stats(entry(1).queuedAt.getTime() + 5_000);
    expect(stats).toMatchObject({ records: 2, bytes: Buffer.byteLength(text), oldestQueuedAt: entry(1).queuedAt, oldestAgeMs: 5_000 });
  });

  it('commits 500 concurrent appends in a few writes, in order, every one durable', async () => {
    const outbox = await openOutbox();
    await Promise.all(Array.from({ length: 500 }, (_, n) => outbox.append(entry(n))));

    const commits = outbox.groupCommitStats();
    expect(commits.records).toBe(500);
    expect(commits.commits).toBeLessThanOrEqual(5);
    expect(commits.largestBatch).toBeGreaterThanOrEqual(100);
    expect(outbox.stats().records).toBe(500);
    expect(await replayAll(outbox)).toEqual(Array.from({ length: 500 }, (_, n) => `record-${n}`));
  });

  it('replays in order, stops at the first failure and resumes with that entry', async () => {
    const outbox = await openOutbox();
    for (let n = 0; n < 5; n += 1) await outbox.append(entry(n));
    const seen: string[] = [];
    const stopped = await outbox.drain(async (item) => {
      if (item.record.recordId === 'record-2') throw new Error('MongoDB is down');
      seen.push(item.record.recordId);
      return 'applied';
    });
    expect(stopped).toMatchObject({ replayed: 2, remaining: 3 });
    expect((stopped.error as Error).message).toBe('MongoDB is down');
    expect(outbox.stats().records).toBe(3);

    expect(await replayAll(outbox)).toEqual(['record-2', 'record-3', 'record-4']);
    expect(outbox.isEmpty).toBe(true);
    expect(outbox.stats()).toMatchObject({ records: 0, bytes: 0 });
    expect(await segmentFiles(dir)).toEqual([]);
  });

  it('picks up entries appended while a replay is running', async () => {
    const outbox = await openOutbox();
    await outbox.append(entry(0));
    const seen: string[] = [];
    await outbox.drain(async (item) => {
      seen.push(item.record.recordId);
      if (item.record.recordId === 'record-0') await outbox.append(entry(1));
      return 'applied';
    });
    expect(seen).toEqual(['record-0', 'record-1']);
    expect(outbox.isEmpty).toBe(true);
  });

  it('recovers entries left by a process that never closed, and replays each exactly once across restarts', async () => {
    const first = await openOutbox({ checkpointEvery: 1 });
    for (let n = 0; n < 6; n += 1) await first.append(entry(n));
    // Replay half, then "crash": no close(), the object is just dropped.
    await first.drain(async (item) => {
      if (item.record.recordId === 'record-3') throw new Error('killed');
      return 'applied';
    });

    const second = await openOutbox();
    expect(second.stats().records).toBe(3);
    expect(await replayAll(second)).toEqual(['record-3', 'record-4', 'record-5']);

    // Sequence numbers never go back: a new segment after a full drain cannot be mistaken for a replayed one.
    await second.append(entry(6));
    const third = await openOutbox();
    expect(await replayAll(third)).toEqual(['record-6']);
  });

  it('re-sends at most one checkpoint interval after a crash mid-replay', async () => {
    const first = await openOutbox({ checkpointEvery: 4 });
    for (let n = 0; n < 10; n += 1) await first.append(entry(n));
    const snapshot = `${dir}-killed`;
    await first.drain(async (item) => {
      // What the disk holds if the process is killed while record-6 is being applied.
      if (item.record.recordId === 'record-6') await cp(dir, snapshot, { recursive: true });
      return 'applied';
    });
    try {
      const restarted = await UsageOutbox.open(snapshot);
      open.push(restarted);
      // Checkpointed after record-3: record-4 and record-5 go again (the ledger counts their ids once).
      expect(await replayAll(restarted)).toEqual(['record-4', 'record-5', 'record-6', 'record-7', 'record-8', 'record-9']);
    } finally {
      await rm(snapshot, { recursive: true, force: true });
    }
  });

  it('sets aside a torn last line and a corrupt line, and replays the rest', async () => {
    const first = await openOutbox();
    for (let n = 0; n < 3; n += 1) await first.append(entry(n));
    const [file] = await segmentFiles(dir);
    const path = join(dir, file);
    const lines = (await readFile(path, 'utf8')).split('\n');
    lines[1] = lines[1].replace('"promptTokens":101', '"promptTokens":999');
    await writeFile(path, lines.join('\n'));
    await appendFile(path, encodeEntry(entry(3)).subarray(0, 30));

    const second = await openOutbox();
    expect(second.stats().records).toBe(4);
    const result = await second.drain(async () => 'applied');
    expect(result).toMatchObject({ replayed: 2, rejected: 2, remaining: 0 });
    const rejected = (await readFile(join(dir, REJECTED_FILE), 'utf8')).trimEnd().split('\n').map((line) => JSON.parse(line));
    expect(rejected.map((line) => line.reason)).toEqual(['checksum mismatch', 'checksum mismatch']);
    expect(second.stats().rejected).toBe(2);
  });

  it('sets aside an entry the ledger refuses for good instead of blocking the ones behind it', async () => {
    const outbox = await openOutbox();
    for (let n = 0; n < 3; n += 1) await outbox.append(entry(n));
    const seen: string[] = [];
    const result = await outbox.drain(async (item) => {
      if (item.record.recordId === 'record-1') return 'rejected';
      seen.push(item.record.recordId);
      return 'applied';
    });
    expect(seen).toEqual(['record-0', 'record-2']);
    expect(result).toMatchObject({ replayed: 2, rejected: 1, remaining: 0 });
  });

  it('rolls to a new segment past the size limit and deletes segments once replayed', async () => {
    const outbox = await openOutbox({ maxSegmentBytes: 1_000, checkpointEvery: 1 });
    for (let n = 0; n < 12; n += 1) await outbox.append(entry(n));
    const files = await segmentFiles(dir);
    expect(files.length).toBeGreaterThan(2);

    let applied = 0;
    await outbox.drain(async () => {
      if (++applied > 5) throw new Error('stop');
      return 'applied';
    });
    expect((await segmentFiles(dir)).length).toBeLessThan(files.length);

    const reopened = await openOutbox();
    expect(await replayAll(reopened)).toEqual(Array.from({ length: 7 }, (_, i) => `record-${i + 5}`));
    expect(await segmentFiles(dir)).toEqual([]);
  });

  it('flushes pending appends on close and refuses appends afterwards', async () => {
    const outbox = await UsageOutbox.open(dir);
    const appended = Promise.all([outbox.append(entry(1)), outbox.append(entry(2))]);
    await outbox.close();
    await appended;
    await expect(outbox.append(entry(3))).rejects.toThrow('closed');
    expect((await openOutbox()).stats().records).toBe(2);
  });
});
