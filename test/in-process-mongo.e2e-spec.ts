import {
  Binary,
  CommandStartedEvent,
  CommandSucceededEvent,
  Db,
  Decimal128,
  Document,
  Double,
  Int32,
  Long,
  MongoBulkWriteError,
  MongoClient,
  MongoServerError,
  ObjectId,
} from 'mongodb';
import mongoose from 'mongoose';
import { loadConfig } from '../src/config/load-config';
import { InProcessMongoServer } from '../src/database/in-process-mongo/in-process-mongo.server';

/**
 * Conformance tests written against MongoDB's documented behaviour. With MONGODB_URI
 * set they run against that server instead of the in-process one, and must pass there too.
 */

const realUri = loadConfig().MONGODB_URI;
const dbName = `in_process_conformance_${process.pid}_${Date.now()}`;
const TTL_MONITOR_MS = 200;

let server: InProcessMongoServer | undefined;
let client: MongoClient;
let db: Db;
let hello: Document;
const started: CommandStartedEvent[] = [];
const succeeded: CommandSucceededEvent[] = [];

async function expectServerError(promise: Promise<unknown>, code: number): Promise<MongoServerError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(MongoServerError);
  expect((error as MongoServerError).code).toBe(code);
  return error as MongoServerError;
}

function commandsNamed(name: string): CommandStartedEvent[] {
  return started.filter((event) => event.commandName === name);
}

beforeAll(async () => {
  if (!realUri) server = await InProcessMongoServer.start({ ttlMonitorIntervalMs: TTL_MONITOR_MS });
  client = new MongoClient(realUri ?? server!.uri, { monitorCommands: true, maxPoolSize: 100 });
  client.on('commandStarted', (event) => started.push(event));
  client.on('commandSucceeded', (event) => succeeded.push(event));
  await client.connect();
  db = client.db(dbName);
  hello = await db.admin().command({ hello: 1 });
});

afterAll(async () => {
  await db?.dropDatabase();
  await client?.close();
  await server?.stop();
});

beforeEach(() => {
  started.length = 0;
  succeeded.length = 0;
});

describe(InProcessMongoServer.name, () => {
  describe('handshake and admin commands', () => {
    it('presents itself as a writable server with the limits drivers need', async () => {
      expect(hello).toMatchObject({ ok: 1, isWritablePrimary: true });
      expect(hello.maxBsonObjectSize).toBe(16 * 1024 * 1024);
      expect(hello.maxMessageSizeBytes).toBeGreaterThanOrEqual(48_000_000);
      expect(hello.maxWriteBatchSize).toBeGreaterThanOrEqual(100_000);
      expect(hello.maxWireVersion).toBeGreaterThanOrEqual(8);
      expect(typeof hello.logicalSessionTimeoutMinutes).toBe('number');
      expect(typeof hello.connectionId).toBe('number');
      if (server) {
        expect(hello.setName).toBeUndefined();
        expect(hello.maxWireVersion).toBe(21);
      }
    });

    it('answers ping and buildInfo', async () => {
      await expect(db.command({ ping: 1 })).resolves.toMatchObject({ ok: 1 });
      const info = await db.admin().command({ buildInfo: 1 });
      expect(info.version).toMatch(/^\d+\.\d+/);
      expect(info.versionArray).toHaveLength(4);
    });

    it('answers getParameter for featureCompatibilityVersion', async () => {
      const reply = await db.admin().command({ getParameter: 1, featureCompatibilityVersion: 1 });
      expect(reply.featureCompatibilityVersion.version).toMatch(/^\d+\.\d+$/);
    });

    it('rejects an unknown command with CommandNotFound (59)', async () => {
      const error = await expectServerError(db.command({ frobnicate: 1 }), 59);
      expect(error.codeName).toBe('CommandNotFound');
      expect(error.message).toContain("no such command: 'frobnicate'");
    });

    it('creates, lists and drops collections and databases', async () => {
      await db.createCollection('admin_a');
      await expectServerError(db.createCollection('admin_a'), 48);
      const names = (await db.listCollections({}, { nameOnly: true }).toArray()).map((c) => c.name);
      expect(names).toContain('admin_a');
      const filtered = await db.listCollections({ name: 'admin_a' }).toArray();
      expect(filtered).toHaveLength(1);
      expect(filtered[0].type).toBe('collection');
      const { databases } = await db.admin().listDatabases();
      expect(databases.map((d) => d.name)).toContain(dbName);
      await expect(db.collection('admin_a').drop()).resolves.toBe(true);
      expect((await db.listCollections({ name: 'admin_a' }).toArray()).length).toBe(0);
    });
  });

  describe('CRUD', () => {
    it('inserts, finds, updates, replaces and deletes documents', async () => {
      const coll = db.collection('crud');
      const { insertedId } = await coll.insertOne({ name: 'a', n: 1 });
      expect(insertedId).toBeInstanceOf(ObjectId);
      await coll.insertMany([
        { name: 'b', n: 2 },
        { name: 'c', n: 3 },
      ]);
      expect(await coll.findOne({ _id: insertedId })).toEqual({ _id: insertedId, name: 'a', n: 1 });

      const updated = await coll.updateOne({ name: 'b' }, { $set: { n: 20 } });
      expect(updated).toMatchObject({ matchedCount: 1, modifiedCount: 1 });
      const unchanged = await coll.updateOne({ name: 'b' }, { $set: { n: 20 } });
      expect(unchanged).toMatchObject({ matchedCount: 1, modifiedCount: 0 });
      const many = await coll.updateMany({ n: { $gte: 3 } }, { $inc: { n: 1 } });
      expect(many).toMatchObject({ matchedCount: 2, modifiedCount: 2 });

      await coll.replaceOne({ name: 'c' }, { name: 'c2', replaced: true });
      expect(await coll.findOne({ name: 'c2' }, { projection: { _id: 0 } })).toEqual({ name: 'c2', replaced: true });

      expect((await coll.deleteOne({ name: 'a' })).deletedCount).toBe(1);
      expect((await coll.deleteMany({})).deletedCount).toBe(2);
      expect(await coll.countDocuments()).toBe(0);
    });

    it('reports upserted ids and nModified for several update statements', async () => {
      const coll = db.collection('bulk_update');
      await coll.insertMany([{ k: 1 }, { k: 2 }]);
      const result = await coll.bulkWrite(
        [
          { updateOne: { filter: { k: 1 }, update: { $set: { v: 'x' } } } },
          { updateOne: { filter: { k: 3 }, update: { $set: { v: 'y' } }, upsert: true } },
          { updateMany: { filter: { k: { $lte: 2 } }, update: { $set: { w: true } } } },
        ],
        { ordered: true },
      );
      expect(result.matchedCount).toBe(3);
      expect(result.modifiedCount).toBe(3);
      expect(result.upsertedCount).toBe(1);
      expect(result.upsertedIds[1]).toBeInstanceOf(ObjectId);
      expect(await coll.findOne({ k: 3 }, { projection: { _id: 0 } })).toEqual({ k: 3, v: 'y' });
    });

    it('applies every statement of an unordered bulk write but the failing one, and says which failed', async () => {
      const coll = db.collection<{ _id: string; totals?: unknown; pending?: string[]; lease?: Date }>('bulk_unordered');
      await coll.insertOne({ _id: 'corrupt', totals: 'not a document' });
      const error = (await coll
        .bulkWrite(
          [
            { updateOne: { filter: { _id: 'a' }, update: { $inc: { 'totals.n': 1 }, $setOnInsert: { kind: 'new' } }, upsert: true } },
            { updateOne: { filter: { _id: 'corrupt' }, update: { $inc: { 'totals.n': 1 } }, upsert: true } },
            { updateOne: { filter: { _id: 'b' }, update: { $inc: { 'totals.n': 2 } }, upsert: true } },
          ],
          { ordered: false },
        )
        .catch((e: unknown) => e)) as MongoBulkWriteError;
      expect(error).toBeInstanceOf(MongoBulkWriteError);
      expect(error.code).toBe(28);
      expect(error.result.getWriteErrors().map((writeError) => [writeError.index, writeError.code])).toEqual([[1, 28]]);
      expect(error.matchedCount + error.upsertedCount).toBe(2);
      expect(error.upsertedIds).toEqual({ 0: 'a', 2: 'b' });
      expect(await coll.find({ _id: { $in: ['a', 'b', 'missing'] } }, { projection: { 'totals.n': 1 } }).sort({ _id: 1 }).toArray()).toEqual([
        { _id: 'a', totals: { n: 1 } },
        { _id: 'b', totals: { n: 2 } },
      ]);

      await coll.updateMany({ _id: { $in: ['a', 'b'] } }, { $set: { pending: ['day', 'month'], lease: new Date(5) } });
      const settled = await coll.bulkWrite(
        [
          { updateMany: { filter: { _id: { $in: ['a'] } }, update: { $unset: { pending: '', lease: '' } } } },
          { updateMany: { filter: { _id: { $in: ['b', 'missing'] } }, update: { $pullAll: { pending: ['day'] }, $set: { lease: new Date(0) } } } },
        ],
        { ordered: false },
      );
      expect(settled).toMatchObject({ matchedCount: 2, modifiedCount: 2, upsertedCount: 0 });
      expect(await coll.find({ _id: { $in: ['a', 'b'] } }, { projection: { totals: 0 } }).sort({ _id: 1 }).toArray()).toEqual([
        { _id: 'a', kind: 'new' },
        { _id: 'b', pending: ['month'], lease: new Date(0) },
      ]);
    });

    it('sorts, skips, limits and projects', async () => {
      const coll = db.collection('sorting');
      await coll.insertMany([
        { i: 3, tag: 'b', nested: { x: 1, y: 2 } },
        { i: 1, tag: 'a', nested: { x: 3, y: 4 } },
        { i: 2, tag: 'b', nested: { x: 5, y: 6 } },
        { i: 4, tag: 'a', nested: { x: 7, y: 8 } },
      ]);
      const sorted = await coll.find({}, { sort: { tag: 1, i: -1 }, projection: { _id: 0, i: 1 } }).toArray();
      expect(sorted).toEqual([{ i: 4 }, { i: 1 }, { i: 3 }, { i: 2 }]);
      const page = await coll.find().sort({ i: 1 }).skip(1).limit(2).project({ _id: 0, 'nested.y': 1 }).toArray();
      expect(page).toEqual([{ nested: { y: 6 } }, { nested: { y: 2 } }]);
      const excluded = await coll.findOne({ i: 1 }, { projection: { _id: 0, nested: 0 } });
      expect(excluded).toEqual({ i: 1, tag: 'a' });
      const sliced = await db.collection('sorting_arrays').insertOne({ a: [1, 2, 3, 4], b: 'kept', c: { d: 1 } });
      const arrays = db.collection('sorting_arrays');
      // A $slice alone is an exclusion projection: the other fields stay, non-arrays as they are.
      expect(await arrays.findOne({ _id: sliced.insertedId }, { projection: { _id: 0, a: { $slice: -2 }, c: { $slice: 1 } } })).toEqual({
        a: [3, 4],
        b: 'kept',
        c: { d: 1 },
      });
      expect(await arrays.findOne({ _id: sliced.insertedId }, { projection: { _id: 0, b: 0, a: { $slice: 1 } } })).toEqual({ a: [1], c: { d: 1 } });
      expect(await arrays.findOne({ _id: sliced.insertedId }, { projection: { _id: 0, a: { $slice: [-3, 2] } } })).toEqual({ a: [2, 3], b: 'kept', c: { d: 1 } });
      // Next to an inclusion, only the named fields come back.
      expect(await arrays.findOne({ _id: sliced.insertedId }, { projection: { _id: 0, b: 1, a: { $slice: [1, 2] } } })).toEqual({ b: 'kept', a: [2, 3] });
      expect(await arrays.findOne({ _id: sliced.insertedId }, { projection: { _id: 0, b: 1, a: { $slice: 9 } } })).toEqual({ b: 'kept', a: [1, 2, 3, 4] });
    });

    it('matches with query operators and fails on unknown ones instead of matching nothing', async () => {
      const coll = db.collection('operators');
      await coll.insertMany([
        { v: 1, tags: ['x', 'y'], s: 'apple' },
        { v: 5, tags: ['y'], s: 'banana' },
        { v: 10, s: 'cherry' },
      ]);
      expect(await coll.countDocuments({ v: { $gt: 1, $lte: 10 } })).toBe(2);
      expect(await coll.countDocuments({ tags: 'y' })).toBe(2);
      expect(await coll.countDocuments({ tags: { $exists: false } })).toBe(1);
      expect(await coll.countDocuments({ $or: [{ v: 1 }, { s: /^ch/ }] })).toBe(2);
      expect(await coll.countDocuments({ v: { $in: [5, 10] } })).toBe(2);
      expect(await coll.countDocuments({ $expr: { $gt: ['$v', 4] } })).toBe(2);
      const error = await expectServerError(coll.find({ v: { $foo: 1 } }).toArray(), 2);
      expect(error.codeName).toBe('BadValue');
      await expectServerError(coll.find({ $foo: 1 }).toArray(), 2);
      await expectServerError(coll.find({ v: { $in: 5 } }).toArray(), 2);
    });
  });

  describe('cursors', () => {
    beforeAll(async () => {
      await db.collection('cursor_docs').insertMany(Array.from({ length: 250 }, (_, i) => ({ i })));
    });

    it('returns 101 documents in the first batch by default and an int64 cursor id', async () => {
      const docs = await db.collection('cursor_docs').find().toArray();
      expect(docs).toHaveLength(250);
      const firstReply = succeeded.find((event) => event.commandName === 'find')!.reply as Document;
      expect(firstReply.cursor.firstBatch).toHaveLength(101);
      expect(firstReply.cursor.id).toBeInstanceOf(Long);
      expect((firstReply.cursor.id as Long).isZero()).toBe(false);
    });

    it('continues across getMore with batchSize', async () => {
      const seen: number[] = [];
      for await (const doc of db.collection('cursor_docs').find({}, { batchSize: 40, sort: { i: 1 } })) seen.push(doc.i);
      expect(seen).toEqual(Array.from({ length: 250 }, (_, i) => i));
      const getMores = commandsNamed('getMore');
      expect(getMores.length).toBeGreaterThanOrEqual(6);
      expect(getMores[0].command.batchSize).toBe(40);
    });

    it('kills cursors, after which getMore reports CursorNotFound (43)', async () => {
      const cursor = db.collection('cursor_docs').find({}, { batchSize: 5 });
      await cursor.next();
      const id = cursor.id!;
      await cursor.close();
      expect(commandsNamed('killCursors')).toHaveLength(1);
      await expectServerError(db.command({ getMore: id, collection: 'cursor_docs' }), 43);
    });

    it('honours limit and singleBatch', async () => {
      const limited = await db.collection('cursor_docs').find({}, { limit: 7, batchSize: 3 }).toArray();
      expect(limited).toHaveLength(7);
      const reply = await db.command({ find: 'cursor_docs', batchSize: 10, singleBatch: true });
      expect(reply.cursor.firstBatch).toHaveLength(10);
      expect(Number(reply.cursor.id)).toBe(0);
    });
  });

  describe('unique indexes', () => {
    const users = () => db.collection('unique_users');

    beforeAll(async () => {
      await users().createIndex({ userId: 1 }, { unique: true });
      await db.collection('unique_members').createIndex({ org: 1, email: 1 }, { unique: true, name: 'org_email' });
    });

    it('rejects a duplicate insertOne with code 11000 and keyValue', async () => {
      await users().insertOne({ userId: 'dup-1' });
      const error = await expectServerError(users().insertOne({ userId: 'dup-1' }), 11000);
      expect(error.keyValue).toEqual({ userId: 'dup-1' });
      expect(error.keyPattern).toEqual({ userId: 1 });
    });

    it('enforces compound unique keys', async () => {
      const members = db.collection('unique_members');
      await members.insertOne({ org: 'o', email: 'e' });
      await members.insertOne({ org: 'o2', email: 'e' });
      const error = await expectServerError(members.insertOne({ org: 'o', email: 'e' }), 11000);
      expect(error.keyValue).toEqual({ org: 'o', email: 'e' });
      expect(error.keyPattern).toEqual({ org: 1, email: 1 });
      // Missing fields index as null, so a second document without them is a duplicate too.
      await members.insertOne({ note: 'no key fields' });
      const missing = await expectServerError(members.insertOne({ note: 'again' }), 11000);
      expect(missing.keyValue).toEqual({ org: null, email: null });
    });

    it('stops an ordered insertMany at the duplicate and continues an unordered one', async () => {
      const ordered = await users()
        .insertMany([{ userId: 'o1' }, { userId: 'o1' }, { userId: 'o2' }])
        .catch((e: unknown) => e);
      expect(ordered).toBeInstanceOf(MongoBulkWriteError);
      expect((ordered as MongoBulkWriteError).code).toBe(11000);
      expect((ordered as MongoBulkWriteError).insertedCount).toBe(1);
      expect(await users().countDocuments({ userId: 'o2' })).toBe(0);

      const unordered = (await users()
        .insertMany([{ userId: 'u1' }, { userId: 'u1' }, { userId: 'u2' }], { ordered: false })
        .catch((e: unknown) => e)) as MongoBulkWriteError;
      expect(unordered.insertedCount).toBe(2);
      expect(unordered.writeErrors).toHaveLength(1);
      expect((unordered.writeErrors as unknown as Array<{ index: number; code: number }>)[0]).toMatchObject({
        index: 1,
        code: 11000,
      });
      expect(await users().countDocuments({ userId: 'u2' })).toBe(1);
    });

    it('rejects a duplicate produced by updateOne with upsert', async () => {
      await users().insertOne({ userId: 'taken' });
      const error = await expectServerError(
        users().updateOne({ name: 'someone' }, { $set: { userId: 'taken' } }, { upsert: true }),
        11000,
      );
      expect(error.keyValue).toEqual({ userId: 'taken' });
      expect(await users().countDocuments({ name: 'someone' })).toBe(0);
    });

    it('reports a findOneAndUpdate duplicate as a command error with DuplicateKey', async () => {
      await users().insertOne({ userId: 'fam-1', slot: 1 });
      await users().insertOne({ userId: 'fam-2', slot: 2 });
      const error = await expectServerError(
        users().findOneAndUpdate({ slot: 2 }, { $set: { userId: 'fam-1' } }, { returnDocument: 'after' }),
        11000,
      );
      expect(error.codeName).toBe('DuplicateKey');
      expect(error.keyValue).toEqual({ userId: 'fam-1' });
      expect(error.message).toMatch(/E11000 duplicate key error collection: .*unique_users index: userId_1 dup key: \{ userId: "fam-1" \}/);
      expect(await users().findOne({ slot: 2 }, { projection: { _id: 0 } })).toEqual({ userId: 'fam-2', slot: 2 });

      await expectServerError(
        users().findOneAndUpdate({ slot: 99 }, { $set: { userId: 'fam-1' } }, { upsert: true }),
        11000,
      );
    });

    it('refuses to build a unique index over existing duplicates', async () => {
      const coll = db.collection('unique_build');
      await coll.insertMany([{ k: 1 }, { k: 1 }]);
      await expectServerError(coll.createIndex({ k: 1 }, { unique: true }), 11000);
      expect((await coll.listIndexes().toArray()).map((index) => index.name)).toEqual(['_id_']);
    });

    it('lists created indexes with their options and drops them', async () => {
      const indexes = await users().listIndexes().toArray();
      expect(indexes.map((index) => index.name)).toEqual(['_id_', 'userId_1']);
      expect(indexes[1]).toMatchObject({ key: { userId: 1 }, unique: true });
      await db.collection('droppable').createIndex({ a: 1 });
      await db.collection('droppable').dropIndex('a_1');
      expect((await db.collection('droppable').listIndexes().toArray()).map((i) => i.name)).toEqual(['_id_']);
      await expectServerError(db.collection('droppable').dropIndex('nope_1'), 27);
    });
  });

  describe('atomic upserts', () => {
    it('keeps exactly one document with the exact sum under 200 concurrent upserts', async () => {
      const ledger = db.collection('ledger');
      await ledger.createIndex({ userId: 1 }, { unique: true });
      const upsert = async (amount: number): Promise<void> => {
        for (let attempt = 0; ; attempt++) {
          try {
            await ledger.findOneAndUpdate(
              { userId: 'shared' },
              { $inc: { total: amount, calls: 1 }, $setOnInsert: { firstSeen: 'now' } },
              { upsert: true, returnDocument: 'after' },
            );
            return;
          } catch (error) {
            if (error instanceof MongoServerError && error.code === 11000 && attempt < 5) continue;
            throw error;
          }
        }
      };
      await Promise.all(Array.from({ length: 200 }, (_, i) => upsert(i + 1)));
      const docs = await ledger.find({ userId: 'shared' }).toArray();
      expect(docs).toHaveLength(1);
      expect(docs[0].total).toBe((200 * 201) / 2);
      expect(docs[0].calls).toBe(200);
    });

    it('applies $setOnInsert only when inserting and seeds the document from the query', async () => {
      const coll = db.collection('set_on_insert');
      const first = await coll.findOneAndUpdate(
        { userId: 'u', plan: 'free' },
        { $setOnInsert: { createdBy: 'first' }, $inc: { n: 1 } },
        { upsert: true, returnDocument: 'after', projection: { _id: 0 } },
      );
      expect(first).toEqual({ userId: 'u', plan: 'free', createdBy: 'first', n: 1 });
      const second = await coll.findOneAndUpdate(
        { userId: 'u', plan: 'free' },
        { $setOnInsert: { createdBy: 'second' }, $inc: { n: 1 } },
        { upsert: true, returnDocument: 'after', projection: { _id: 0 } },
      );
      expect(second).toEqual({ userId: 'u', plan: 'free', createdBy: 'first', n: 2 });
      const before = await coll.findOneAndUpdate({ userId: 'v' }, { $inc: { n: 1 } }, { upsert: true });
      expect(before).toBeNull();
    });

    it('applies $push with $each and $slice on a missing and on an existing array', async () => {
      const coll = db.collection<{ userId: string; recentSessions?: number[] }>('push_slice');
      const push = (session: number) =>
        coll.findOneAndUpdate(
          { userId: 'p' },
          { $push: { recentSessions: { $each: [session], $slice: -3 } } },
          { upsert: true, returnDocument: 'after' },
        );
      expect((await push(1))?.recentSessions).toEqual([1]);
      await push(2);
      await push(3);
      expect((await push(4))?.recentSessions).toEqual([2, 3, 4]);
      await coll.updateOne({ userId: 'p' }, { $push: { recentSessions: { $each: [9, 0], $sort: 1, $slice: 2 } } });
      expect((await coll.findOne({ userId: 'p' }))?.recentSessions).toEqual([0, 2]);
    });

    it('creates nested objects for dotted $inc and $set paths', async () => {
      const coll = db.collection('dotted');
      await coll.updateOne(
        { userId: 'd' },
        {
          $inc: { 'dailyUsage.2026-11-23.totalTokens': 120, 'dailyUsage.2026-11-23.calls': 1, 'totals.cost': 0.25 },
          $set: { 'profile.name.first': 'Ada' },
        },
        { upsert: true },
      );
      await coll.updateOne({ userId: 'd' }, { $inc: { 'dailyUsage.2026-11-23.totalTokens': 30, 'totals.cost': 0.5 } });
      const doc = await coll.findOne({ userId: 'd' }, { projection: { _id: 0 } });
      expect(doc).toEqual({
        userId: 'd',
        dailyUsage: { '2026-11-23': { calls: 1, totalTokens: 150 } },
        profile: { name: { first: 'Ada' } },
        totals: { cost: 0.75 },
      });
    });

    it('rejects $inc on a non-numeric field (14), conflicting paths (40) and _id changes (66)', async () => {
      const coll = db.collection('update_errors');
      await coll.insertOne({ _id: 'e' as unknown as ObjectId, label: 'text', n: 1 });
      await expectServerError(coll.updateOne({ _id: 'e' as unknown as ObjectId }, { $inc: { label: 1 } }), 14);
      await expectServerError(coll.updateOne({}, { $set: { n: 5 }, $inc: { n: 1 } }), 40);
      await expectServerError(coll.updateOne({}, { $set: { a: 1 }, $unset: { 'a.b': '' } }), 40);
      await expectServerError(coll.updateOne({}, { $set: { _id: 'other' } }), 66);
      await expectServerError(coll.updateOne({}, { $set: { 'label.x': 1 } }), 28);
      await expectServerError(coll.updateOne({}, { $frob: { n: 1 } } as Document), 9);
      expect(await coll.findOne({}, { projection: { _id: 0 } })).toEqual({ label: 'text', n: 1 });
    });
  });

  describe('aggregation', () => {
    beforeAll(async () => {
      await db.collection('events').insertMany([
        { user: 'a', model: 'gpt', tokens: 10, tags: ['x', 'y'] },
        { user: 'a', model: 'claude', tokens: 5, tags: ['x'] },
        { user: 'b', model: 'gpt', tokens: 7, tags: [] },
        { user: 'c', model: 'gpt', tokens: 1, tags: ['y'] },
      ]);
    });

    it('runs $match, $group and $sort', async () => {
      const rows = await db
        .collection('events')
        .aggregate([
          { $match: { tokens: { $gte: 5 } } },
          { $group: { _id: '$user', tokens: { $sum: '$tokens' }, calls: { $sum: 1 } } },
          { $sort: { tokens: -1 } },
        ])
        .toArray();
      expect(rows).toEqual([
        { _id: 'a', tokens: 15, calls: 2 },
        { _id: 'b', tokens: 7, calls: 1 },
      ]);
    });

    it('runs $unwind and $facet', async () => {
      const [facets] = await db
        .collection('events')
        .aggregate([
          {
            $facet: {
              byTag: [{ $unwind: '$tags' }, { $sortByCount: '$tags' }, { $sort: { _id: 1 } }],
              total: [{ $count: 'n' }],
            },
          },
        ])
        .toArray();
      expect(facets).toEqual({
        byTag: [
          { _id: 'x', count: 2 },
          { _id: 'y', count: 2 },
        ],
        total: [{ n: 4 }],
      });
      const unwound = await db
        .collection('events')
        .aggregate([{ $unwind: '$tags' }, { $project: { _id: 0, user: 1, tags: 1 } }, { $sort: { user: 1, tags: 1 } }])
        .toArray();
      expect(unwound).toEqual([
        { user: 'a', tags: 'x' },
        { user: 'a', tags: 'x' },
        { user: 'a', tags: 'y' },
        { user: 'c', tags: 'y' },
      ]);
      expect(await db.collection('events').countDocuments({ tags: { $size: 2 } })).toBe(1);
    });

    it('leaves stored documents untouched by pipeline stages', async () => {
      await db.collection('events').aggregate([{ $addFields: { 'extra.flag': true } }, { $unset: 'tokens' }]).toArray();
      const doc = await db.collection('events').findOne({ user: 'b' }, { projection: { _id: 0 } });
      expect(doc).toEqual({ user: 'b', model: 'gpt', tokens: 7, tags: [] });
    });

    it('rejects $out and $merge rather than ignoring them', async () => {
      if (!server) return; // a real server supports both
      await expectServerError(db.collection('events').aggregate([{ $out: 'copy' }]).toArray(), 2);
      await expectServerError(db.collection('events').aggregate([{ $merge: { into: 'copy' } }]).toArray(), 2);
    });

    it('counts and lists distinct values', async () => {
      const events = db.collection('events');
      expect(await events.countDocuments({ model: 'gpt' })).toBe(3);
      expect(await events.estimatedDocumentCount()).toBe(4);
      expect((await events.distinct('model')).sort()).toEqual(['claude', 'gpt']);
      expect((await events.distinct('tags', { user: 'a' })).sort()).toEqual(['x', 'y']);
      expect((await db.command({ count: 'events', query: { user: 'a' } })).n).toBe(2);
    });
  });

  describe('types', () => {
    it('round-trips BSON types and returns $inc integers as plain numbers', async () => {
      const coll = db.collection('types');
      const oid = new ObjectId();
      await coll.insertOne({
        _id: oid,
        long: Long.fromString('9007199254740993'),
        int: new Int32(7),
        double: new Double(3),
        decimal: Decimal128.fromString('1.10'),
        binary: new Binary(Buffer.from('hi')),
        date: new Date(1_700_000_000_000),
        counter: 1,
      });
      await coll.updateOne({ _id: oid }, { $inc: { counter: 41 } });
      const plain = await coll.findOne({ _id: oid });
      expect(plain?.counter).toBe(42);
      expect(typeof plain?.counter).toBe('number');
      expect(plain?.date).toEqual(new Date(1_700_000_000_000));

      const raw = await coll.findOne({ _id: oid }, { promoteValues: false, promoteLongs: false });
      expect(raw?.long).toBeInstanceOf(Long);
      expect((raw?.long as Long).toString()).toBe('9007199254740993');
      expect(raw?.int).toBeInstanceOf(Int32);
      expect(raw?.double).toBeInstanceOf(Double);
      expect(raw?.decimal.toString()).toBe('1.10');
      expect(raw?.binary).toBeInstanceOf(Binary);
      expect(raw?._id).toEqual(oid);
    });

    it('widens an int32 overflow from $inc to int64', async () => {
      const coll = db.collection('overflow');
      await coll.insertOne({ _id: 'o' as unknown as ObjectId, n: 2147483647 });
      await coll.updateOne({ _id: 'o' as unknown as ObjectId }, { $inc: { n: 1 } });
      expect((await coll.findOne({}))?.n).toBe(2147483648);
      const raw = await coll.findOne({}, { promoteLongs: false });
      expect(raw?.n).toBeInstanceOf(Long);
    });
  });

  describe('TTL indexes', () => {
    it(
      'removes documents whose indexed date is older than expireAfterSeconds',
      async () => {
        const coll = db.collection('ttl');
        await coll.createIndex({ createdAt: 1 }, { expireAfterSeconds: 1 });
        await coll.insertMany([
          { name: 'old', createdAt: new Date(Date.now() - 60_000) },
          { name: 'fresh', createdAt: new Date(Date.now() + 3_600_000) },
          { name: 'no-date', createdAt: 'not a date' },
        ]);
        const deadline = Date.now() + (server ? 5_000 : 120_000);
        while ((await coll.countDocuments({ name: 'old' })) > 0 && Date.now() < deadline) {
          await new Promise((resolve) => setTimeout(resolve, server ? TTL_MONITOR_MS : 1_000));
        }
        expect((await coll.find({}, { projection: { _id: 0, name: 1 } }).toArray()).map((d) => d.name).sort()).toEqual([
          'fresh',
          'no-date',
        ]);
        const [, ttlIndex] = await coll.listIndexes().toArray();
        expect(ttlIndex.expireAfterSeconds).toBe(1);
      },
      realUri ? 150_000 : 10_000,
    );
  });

  describe('transactions', () => {
    it('rejects transactions on a standalone server', async () => {
      if (hello.setName || hello.msg === 'isdbgrid') return; // replica sets support them
      const session = client.startSession();
      try {
        session.startTransaction();
        await expectServerError(db.collection('txn').find({}, { session }).toArray(), 20);
        await session.abortTransaction().catch(() => undefined);
        session.startTransaction();
        // For writes the driver rewraps code 20 as "does not support retryable writes".
        const error = (await db
          .collection('txn')
          .insertOne({ a: 1 }, { session })
          .catch((e: unknown) => e)) as MongoServerError;
        expect(error).toBeInstanceOf(MongoServerError);
        expect(error.code ?? (error.errorResponse.originalError as MongoServerError | undefined)?.code).toBe(20);
      } finally {
        await session.abortTransaction().catch(() => undefined);
        await session.endSession();
      }
      expect(await db.collection('txn').countDocuments()).toBe(0);
    });
  });

  describe('through mongoose', () => {
    it('builds a unique index with init/syncIndexes and reports duplicates as 11000', async () => {
      const connection = await mongoose.createConnection(realUri ?? server!.uri, { dbName }).asPromise();
      try {
        const schema = new mongoose.Schema({
          userId: { type: String, required: true, unique: true },
          tokens: { type: Number, default: 0 },
        });
        const Usage = connection.model('MongooseUsage', schema);
        await Usage.init();
        await Usage.syncIndexes();
        const indexes = await Usage.collection.listIndexes().toArray();
        expect(indexes.find((index) => index.name === 'userId_1')).toMatchObject({ unique: true });

        await Usage.create({ userId: 'm1' });
        const duplicate = await Usage.create({ userId: 'm1' }).catch((e: unknown) => e);
        expect((duplicate as { code?: number }).code).toBe(11000);

        const updated = await Usage.findOneAndUpdate(
          { userId: 'm2' },
          { $inc: { tokens: 5 } },
          { upsert: true, returnDocument: 'after' },
        ).lean();
        expect(updated).toMatchObject({ userId: 'm2', tokens: 5 });
        expect(await Usage.countDocuments()).toBe(2);
      } finally {
        await connection.close();
      }
    });
  });
});
