import { getConnectionToken } from '@nestjs/mongoose';
import type { CommandStartedEvent, Document } from 'mongodb';
import type { Connection } from 'mongoose';
import { TokenTrackingService } from '../src/token-tracking/token-tracking.service';
import { UsageRecord } from '../src/token-tracking/usage-record';
import { createTestApp, TestApp } from './support/test-app';

const record = (overrides: Partial<UsageRecord> = {}): UsageRecord => ({
  operationType: 'plugin_generation',
  model: 'openai/gpt-4o-mini',
  provider: 'openrouter',
  promptTokens: 150,
  completionTokens: 300,
  costMicros: 203,
  costSource: 'catalog',
  latencyMs: 120,
  success: true,
  ...overrides,
});

describe(TokenTrackingService.name, () => {
  let testApp: TestApp;
  let tracking: TokenTrackingService;

  beforeAll(async () => {
    testApp = await createTestApp({ RECENT_SESSIONS_LIMIT: 50, DAILY_RETENTION_DAYS: 30, MONGODB_MONITOR_COMMANDS: true });
    tracking = testApp.app.get(TokenTrackingService);
  });

  afterAll(() => testApp.close());

  it('returns before, after and delta from one upsert', async () => {
    const first = await tracking.trackTokenUsage('delta-user', record({ promptTokens: 10, completionTokens: 5, costMicros: 7 }));
    expect(first.before).toEqual({ promptTokens: 0, completionTokens: 0, embeddingTokens: 0, totalTokens: 0, costMicros: 0, requestCount: 0 });
    expect(first.delta).toEqual({ promptTokens: 10, completionTokens: 5, embeddingTokens: 0, totalTokens: 15, costMicros: 7, requestCount: 1 });
    expect(first.after).toEqual(first.delta);

    const second = await tracking.trackTokenUsage('delta-user', record({ promptTokens: 1, completionTokens: 2, embeddingTokens: 3, costMicros: 4 }));
    expect(second.before).toEqual(first.after);
    expect(second.after).toEqual({ promptTokens: 11, completionTokens: 7, embeddingTokens: 3, totalTokens: 21, costMicros: 11, requestCount: 2 });
  });

  it('writes a lone record with one findAndModify, and several users\' records with one bulk update and one read', async () => {
    const commands: CommandStartedEvent[] = [];
    const listener = (event: CommandStartedEvent) => {
      if ((event.command as Document)[event.commandName] === 'user_token_usage') commands.push(event);
    };
    const client = testApp.app.get<Connection>(getConnectionToken()).getClient();
    client.on('commandStarted', listener);
    try {
      const lone = await tracking.trackTokenUsage('lone-user', record({ promptTokens: 4, completionTokens: 6 }));
      expect(lone.after.totalTokens).toBe(10);
      expect(commands.map((command) => command.commandName)).toEqual(['findAndModify']);

      commands.length = 0;
      // Submitted in the same turn of the event loop, the four records go together in one commit.
      const results = await Promise.all(['lone-user', 'user-b', 'user-c', 'user-b'].map((userId) => tracking.trackTokenUsage(userId, record({ promptTokens: 1, completionTokens: 1 }))));
      expect(commands.map((command) => command.commandName)).toEqual(['update', 'find']);
      expect(results.map((result) => result.after.requestCount)).toEqual([2, 1, 1, 2]);
      expect(results[3].before).toEqual(results[1].after);
    } finally {
      client.off('commandStarted', listener);
    }
  });

  it('keeps exact totals, day counts and N sessions under 1,000 concurrent writes for a new user', async () => {
    const userId = 'concurrent-user';
    const occurredAt = new Date('2026-11-23T12:00:00Z');
    const results = await Promise.all(
      Array.from({ length: 1000 }, (_, i) =>
        tracking.trackTokenUsage(userId, record({ promptTokens: i % 7, completionTokens: 1 + (i % 3), costMicros: i, occurredAt, requestId: `r${i}` })),
      ),
    );
    const expectedPrompt = Array.from({ length: 1000 }, (_, i) => i % 7).reduce((a, b) => a + b, 0);
    const expectedCompletion = Array.from({ length: 1000 }, (_, i) => 1 + (i % 3)).reduce((a, b) => a + b, 0);
    const expectedCost = (999 * 1000) / 2;

    const documents = await testApp.db.collection('user_token_usage').find({ userId }).toArray();
    expect(documents).toHaveLength(1);
    const [document] = documents;
    expect(document.totalPromptTokens).toBe(expectedPrompt);
    expect(document.totalCompletionTokens).toBe(expectedCompletion);
    expect(document.totalTokens).toBe(expectedPrompt + expectedCompletion);
    expect(document.totalCostMicros).toBe(expectedCost);
    expect(document.requestCount).toBe(1000);
    expect(document.dailyUsage['2026-11-23'].requestCount).toBe(1000);
    expect(document.dailyUsage['2026-11-23'].operations.plugin_generation).toBe(1000);
    expect(document.monthlyUsage['2026-11'].totalTokens).toBe(expectedPrompt + expectedCompletion);
    expect(document.recentSessions).toHaveLength(50);

    // Every write saw a distinct state: the request counts after each write are exactly 1..1000.
    const counts = results.map((result) => result.after.requestCount).sort((a, b) => a - b);
    expect(counts).toEqual(Array.from({ length: 1000 }, (_, i) => i + 1));
  });

  it('keeps before/after exact per record when two processes write one user at once', async () => {
    // A second service on the same database stands for another process: its commits land
    // between this one's update and read, and are taken back out by record id.
    const other = await createTestApp({ MONGODB_URI: testApp.config.MONGODB_URI!, MONGODB_DB_NAME: testApp.config.MONGODB_DB_NAME, RECENT_SESSIONS_LIMIT: 1000 });
    const mine = await createTestApp({ MONGODB_URI: testApp.config.MONGODB_URI!, MONGODB_DB_NAME: testApp.config.MONGODB_DB_NAME, RECENT_SESSIONS_LIMIT: 1000 });
    try {
      const services = [mine.app.get(TokenTrackingService), other.app.get(TokenTrackingService)];
      const userId = 'two-process-user';
      const results = await Promise.all(
        Array.from({ length: 600 }, (_, i) => services[i % 2].trackTokenUsage(userId, record({ promptTokens: 1 + (i % 5), completionTokens: i % 3, costMicros: i }))),
      );
      const chain = [...results].sort((a, b) => a.after.requestCount - b.after.requestCount);
      expect(chain.map((result) => result.after.requestCount)).toEqual(Array.from({ length: 600 }, (_, i) => i + 1));
      chain.forEach((result, i) => {
        expect(result.before).toEqual(i === 0 ? { promptTokens: 0, completionTokens: 0, embeddingTokens: 0, totalTokens: 0, costMicros: 0, requestCount: 0 } : chain[i - 1].after);
        expect(result.after.totalTokens - result.before.totalTokens).toBe(result.delta.totalTokens);
      });
      const document = await testApp.db.collection('user_token_usage').findOne({ userId });
      expect(document?.totalTokens).toBe(chain.at(-1)!.after.totalTokens);
      expect(document?.totalCostMicros).toBe((599 * 600) / 2);
    } finally {
      await Promise.all([mine.close(), other.close()]);
    }
  });

  it('counts a replayed record id once', async () => {
    const replayed = record({ recordId: 'outbox-record-1', promptTokens: 100, completionTokens: 0, costMicros: 0 });
    const first = await tracking.trackTokenUsage('replay-user', replayed);
    const again = await tracking.trackTokenUsage('replay-user', replayed);
    expect(first.delta.totalTokens).toBe(100);
    expect(again.delta.totalTokens).toBe(0);
    expect(again.after).toEqual(first.after);
    const document = await testApp.db.collection('user_token_usage').findOne({ userId: 'replay-user' });
    expect(document?.requestCount).toBe(1);
  });

  it('prunes daily buckets older than the retention and keeps monthly ones', async () => {
    const now = new Date();
    const old = new Date(now.getTime() - 45 * 86_400_000);
    await tracking.trackTokenUsage('prune-user', record({ occurredAt: old }));
    await tracking.trackTokenUsage('prune-user', record({ occurredAt: now }));
    let document: Record<string, any> | null = null;
    for (let i = 0; i < 50; i += 1) {
      document = await testApp.db.collection('user_token_usage').findOne({ userId: 'prune-user' });
      if (Object.keys(document?.dailyUsage ?? {}).length === 1) break;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    expect(Object.keys(document!.dailyUsage)).toEqual([now.toISOString().slice(0, 10)]);
    expect(Object.keys(document!.monthlyUsage)).toContain(old.toISOString().slice(0, 7));
    expect(document!.requestCount).toBe(2);
  });

  it('rejects negative or fractional counts without writing', async () => {
    await expect(tracking.trackTokenUsage('bad-record-user', record({ promptTokens: -1 }))).rejects.toThrow('promptTokens');
    await expect(tracking.trackTokenUsage('bad-record-user', record({ costMicros: 1.5 }))).rejects.toThrow('costMicros');
    expect(await testApp.db.collection('user_token_usage').countDocuments({ userId: 'bad-record-user' })).toBe(0);
  });

  it('reports a failed write through trackSafely instead of throwing', async () => {
    const result = await tracking.trackSafely('not a valid id', record());
    expect(result.trackingEnabled).toBe(false);
    expect(result.delta.totalTokens).toBe(450);
  });

  describe('GET /user/:userId/token-usage', () => {
    it('returns the seed shape with rollups and sessions', async () => {
      const at = new Date('2026-11-22T08:00:00Z');
      await tracking.trackTokenUsage('user123', record({ occurredAt: at, operationType: 'chat_intent', costMicros: 1500 }));
      await tracking.trackTokenUsage('user123', record({ operationType: 'chat_info', embeddingTokens: 10 }));

      const response = await testApp.api().get('/user/user123/token-usage').expect(200);
      expect(response.body).toMatchObject({
        userId: 'user123',
        totalTokens: 910,
        promptTokens: 300,
        completionTokens: 600,
        embeddingTokens: 10,
        requestCount: 2,
        costUsd: 0.001703,
        firstRequestAt: at.toISOString(),
      });
      expect(response.body.dailyUsage[0]).toMatchObject({
        date: '2026-11-22',
        totalTokens: 450,
        requestCount: 1,
        costUsd: 0.0015,
        operations: { chat_intent: 1 },
      });
      expect(response.body.monthlyUsage.map((bucket: { month: string }) => bucket.month)).toContain('2026-11');
      expect(response.body.recentSessions).toHaveLength(2);
      expect(response.body.recentSessions[0]).toMatchObject({ operationType: 'chat_info', embeddingTokens: 10, totalTokens: 460 });
      expect(typeof response.body.lastRequestAt).toBe('string');
      expect(response.body).not.toHaveProperty('appliedRecordIds');
      expect(response.headers['x-request-id']).toBeTruthy();
    });

    it('answers 404 with a message for an unknown user', async () => {
      const response = await testApp.api().get('/user/nobody-here/token-usage').expect(404);
      expect(response.body).toMatchObject({ statusCode: 404, message: 'No token usage recorded for user "nobody-here"' });
    });

    it.each([
      ['$where', '%24where'],
      ['operator object', '%7B%22%24ne%22%3Anull%7D'],
      ['space', 'a%20b'],
      ['too long', 'x'.repeat(129)],
      ['slash-encoded', 'a%2Fb'],
    ])('rejects a bad id (%s) with 400 naming userId', async (_label, id) => {
      const response = await testApp.api().get(`/user/${id}/token-usage`).expect(400);
      expect(response.body.message).toContain('userId must match');
      expect(response.body.fields[0].field).toBe('userId');
    });
  });
});
