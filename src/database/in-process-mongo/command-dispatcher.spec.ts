import { Document, Long } from 'bson';
import { dispatchCommand } from './command-dispatcher';
import { CommandContext } from './command-types';
import { CursorStore, SerializedReply } from './cursor-store';
import { MemoryStorage } from './memory-storage';
import { deserialize } from 'bson';

function newContext(): CommandContext {
  return { storage: new MemoryStorage(), cursors: new CursorStore(), connectionId: 1, now: () => Date.now() };
}

function run(context: CommandContext, command: Document): Document {
  const reply = dispatchCommand({ ...command, $db: 'unit' }, context);
  return reply instanceof SerializedReply ? deserialize(reply.bytes, { promoteLongs: false }) : reply;
}

function ledgerUpdate(userId: string, day: string, session: number): Document {
  const inc: Document = { totalTokens: 150, promptTokens: 100, completionTokens: 50, calls: 1, costUsd: 0.0012 };
  for (const bucket of [`daily.${day}`, `monthly.${day.slice(0, 7)}`, 'byModel.gpt-4o-mini']) {
    for (const field of ['totalTokens', 'promptTokens', 'completionTokens', 'calls', 'costUsd']) {
      inc[`${bucket}.${field}`] = field === 'costUsd' ? 0.0012 : field === 'calls' ? 1 : 50;
    }
  }
  return {
    findAndModify: 'usage',
    query: { userId },
    update: {
      $inc: inc,
      $push: { recentSessions: { $each: [{ session, at: new Date(), tokens: 150 }], $slice: -50 } },
      $setOnInsert: { userId, createdAt: new Date() },
      $set: { updatedAt: new Date() },
    },
    upsert: true,
    new: true,
  };
}

describe(dispatchCommand.name, () => {
  it('answers unknown commands with CommandNotFound', () => {
    expect(run(newContext(), { frobnicate: 1 })).toEqual({
      ok: 0,
      errmsg: "no such command: 'frobnicate'",
      code: 59,
      codeName: 'CommandNotFound',
    });
  });

  it('rejects unknown fields and unsupported options loudly', () => {
    const context = newContext();
    expect(run(context, { find: 'c', frob: 1 })).toMatchObject({ ok: 0, code: 40415 });
    expect(run(context, { find: 'c', collation: { locale: 'fr' } })).toMatchObject({ ok: 0, code: 2 });
    expect(run(context, { find: 'c', filter: { $where: 'true' } })).toMatchObject({ ok: 0, code: 2 });
    expect(run(context, { find: 'c', filter: { a: { $near: [0, 0] } } })).toMatchObject({ ok: 0, code: 2 });
    expect(run(context, { aggregate: 'c', pipeline: [{ $search: {} }], cursor: {} })).toMatchObject({ ok: 0, code: 2 });
    expect(run(context, { aggregate: 'c', pipeline: [{ $vectorSearch: {} }], cursor: {} })).toMatchObject({ ok: 0, code: 2 });
    expect(run(context, { aggregate: 'c', pipeline: [{ $frob: {} }], cursor: {} })).toMatchObject({ ok: 0, code: 40324 });
    expect(run(context, { aggregate: 'c', pipeline: [] })).toMatchObject({ ok: 0, code: 9 });
    expect(run(context, { create: 'c', capped: true, size: 10 })).toMatchObject({ ok: 0, code: 2 });
    expect(run(context, { createIndexes: 'c', indexes: [{ key: { t: 'text' }, name: 't' }] })).toMatchObject({ ok: 0, code: 2 });
    expect(run(context, { delete: 'c', deletes: [{ q: {}, limit: 5 }] })).toMatchObject({ writeErrors: [{ code: 9 }] });
    expect(run(context, { delete: 'c', deletes: [{ limit: 0 }] })).toMatchObject({ writeErrors: [{ code: 40414 }] });
    expect(run(context, { update: 'c', updates: [{ q: {} }] })).toMatchObject({ writeErrors: [{ code: 40414 }] });
    expect(run(context, { update: 'c', updates: [{ q: {}, u: { $set: { a: 1 } }, frob: 1 }] })).toMatchObject({
      writeErrors: [{ code: 40415 }],
    });
  });

  it('rejects transactions like a standalone mongod', () => {
    const reply = run(newContext(), { insert: 'c', documents: [{}], txnNumber: Long.fromNumber(1), autocommit: false, startTransaction: true });
    expect(reply).toMatchObject({ ok: 0, code: 20, codeName: 'IllegalOperation' });
  });

  it('applies thousands of ledger-shaped findAndModify upserts (~20 $inc paths, $push/$slice) exactly', () => {
    const context = newContext();
    run(context, { createIndexes: 'usage', indexes: [{ key: { userId: 1 }, name: 'userId_1', unique: true }] });
    for (let i = 0; i < 2_000; i++) run(context, { insert: 'usage', documents: [{ userId: `other-${i}` }] });
    const iterations = 3_000;
    const runOnce = (i: number) => {
      const reply = dispatchCommand({ ...ledgerUpdate(`user-${i % 50}`, `2026-11-${10 + (i % 20)}`, i), $db: 'unit' }, context);
      if ((reply as Document).ok !== 1) throw new Error(JSON.stringify(reply));
    };
    // Speed is measured in bench/ledger.ts, not asserted here.
    for (let i = 0; i < iterations; i++) runOnce(i);
    const doc = run(context, { find: 'usage', filter: { userId: 'user-0' } }).cursor.firstBatch[0];
    expect(doc.calls).toBe(iterations / 50);
    expect(doc.recentSessions).toHaveLength(50);
  });
});
