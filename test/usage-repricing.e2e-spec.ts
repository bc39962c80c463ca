import type { Document } from 'mongodb';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BUNDLED_PRICE_CATALOG_PATH } from '../src/ai/pricing.service';
import { Clock } from '../src/common/clock';
import { UsageEventsService } from '../src/analytics/usage-events.service';
import { main } from '../src/cli/usage-cli';
import { TokenTrackingService } from '../src/token-tracking/token-tracking.service';
import type { UsageRecord } from '../src/token-tracking/usage-record';
import { formatTokens } from '../src/dashboard/web/usage-format';
import { launchChromium } from './support/headless-chromium';
import { createTestApp, TestApp } from './support/test-app';
import { createUsageRecord } from './support/usage-record.factory';

const DAY_MS = 86_400_000;
const dayKey = (date: Date) => date.toISOString().slice(0, 10);

/**
 * Seeded usage as the old catalogue priced it (gpt-4o at $5/$15 after the alias moved to the
 * $2.50/$10 snapshot, a house model with no price yet), then re-priced with the fixed catalogue.
 * Expected figures come from the published prices, worked out here.
 */
describe('re-pricing after a catalogue fix (POST /api/usage/reprice, token-usage reprice)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'reprice-catalog-'));
  let testApp: TestApp;
  let baseUrl: string;
  const now = Date.now();
  const inPeriod = new Date(Math.floor((now - 2 * DAY_MS) / DAY_MS) * DAY_MS + 10 * 3_600_000);
  const outOfPeriod = new Date(inPeriod.getTime() - 6 * DAY_MS);
  const from = new Date(inPeriod.getTime() - 3 * DAY_MS).toISOString();
  const to = new Date(now + 60_000).toISOString();

  // gpt-4o, 10,000 in + 2,000 out: old 10k x 5 + 2k x 15 = 80,000; new 10k x 2.5 + 2k x 10 = 45,000 micro-USD.
  const gpt4o = createUsageRecord({
    recordId: 'rec-gpt4o',
    occurredAt: inPeriod,
    model: 'gpt-4o',
    provider: 'openai',
    promptTokens: 10_000,
    completionTokens: 2_000,
    costMicros: 80_000,
    priceVersion: 'catalog old',
    priceEntry: 'gpt-4o@2024-05-13',
  });
  // gpt-4o with 4,000 cached: old (cache ignored) 65,000; new 6k x 2.5 + 4k x 1.25 + 1k x 10 = 30,000.
  const gpt4oCached = createUsageRecord({
    recordId: 'rec-gpt4o-cached',
    occurredAt: new Date(inPeriod.getTime() + 60_000),
    model: 'gpt-4o',
    provider: 'openai',
    promptTokens: 10_000,
    cachedTokens: 4_000,
    completionTokens: 1_000,
    costMicros: 65_000,
  });
  // Already right: gpt-4o-mini 10k x 0.15 + 1k x 0.6 = 2,100.
  const mini = createUsageRecord({ recordId: 'rec-mini', occurredAt: inPeriod, model: 'gpt-4o-mini', provider: 'openai', promptTokens: 10_000, completionTokens: 1_000, costMicros: 2_100 });
  // Unpriced house model, now in the catalogue at $1/$2: 3k x 1 + 0.5k x 2 = 4,000.
  const house = createUsageRecord({
    recordId: 'rec-house',
    occurredAt: inPeriod,
    model: 'acme/house-model',
    provider: 'compatible',
    promptTokens: 3_000,
    completionTokens: 500,
    costMicros: 0,
    costSource: 'unpriced',
  });
  // The provider's own figure is its invoice: never re-priced.
  const providerPriced = createUsageRecord({ recordId: 'rec-provider', occurredAt: inPeriod, model: 'gpt-4o', provider: 'openrouter', promptTokens: 10_000, completionTokens: 2_000, costMicros: 12_345, costSource: 'provider' });
  // Mispriced but outside the period.
  const outside = createUsageRecord({ recordId: 'rec-outside', occurredAt: outOfPeriod, model: 'gpt-4o', provider: 'openai', promptTokens: 10_000, completionTokens: 2_000, costMicros: 80_000 });

  const seeded: [string, UsageRecord & { recordId: string; occurredAt: Date }][] = [
    ['alice', gpt4o],
    ['alice', gpt4oCached],
    ['alice', mini],
    ['bob', house],
    ['bob', providerPriced],
    ['carol', outside],
  ];

  const snapshot = async () => ({
    events: await testApp.db.collection('usage_events').find({}).sort({ _id: 1 }).toArray(),
    ledger: await testApp.db.collection('user_token_usage').find({}, { projection: { _id: 0 } }).sort({ userId: 1 }).toArray(),
    rollups: await testApp.db.collection('usage_rollups').find({}).sort({ _id: 1 }).toArray(),
    userRollups: await testApp.db.collection('usage_user_rollups').find({}).sort({ _id: 1 }).toArray(),
  });
  const byId = (documents: Document[], id: string) => documents.find((document) => document._id === id)!;
  const byUser = (documents: Document[], userId: string) => documents.find((document) => document.userId === userId)!;
  const withoutUpdatedAt = (documents: Document[]) => documents.map(({ updatedAt: _updatedAt, ...rest }) => rest);
  const reprice = (body: Record<string, unknown>) => testApp.api().post('/api/usage/reprice').send({ from, to, ...body });

  beforeAll(async () => {
    const catalog = JSON.parse(readFileSync(BUNDLED_PRICE_CATALOG_PATH, 'utf8')) as { version: string; models: Record<string, unknown> };
    catalog.version = 'test-fix-1';
    catalog.models['acme/house-model'] = [{ effectiveFrom: '2024-01-01', inputPerMillion: 1, outputPerMillion: 2, basis: 'custom' }];
    const path = join(dir, 'catalog.json');
    writeFileSync(path, JSON.stringify(catalog));
    testApp = await createTestApp({ PRICE_CATALOG_PATH: path });
    await testApp.app.listen(0, '127.0.0.1');
    const address = testApp.app.getHttpServer().address() as { port: number };
    baseUrl = `http://127.0.0.1:${address.port}`;
    const ledger = testApp.app.get(TokenTrackingService);
    for (const [userId, record] of seeded) await ledger.trackSafely(userId, record);
    await testApp.app.get(UsageEventsService).settled();
    await testApp.app.get(UsageEventsService).flushed();
  }, 120_000);

  afterAll(async () => {
    await testApp?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('dry run: reports the difference per user and per model, and changes nothing', async () => {
    const before = await snapshot();
    const response = await reprice({ dryRun: true }).expect(200);
    expect(response.body).toMatchObject({
      dryRun: true,
      catalogVersion: 'catalog test-fix-1',
      examined: 4,
      changed: 3,
      unchanged: 1,
      withoutBreakdown: 0,
      total: { events: 3, beforeMicros: 145_000, afterMicros: 79_000, deltaMicros: -66_000, deltaUsd: -0.066 },
    });
    expect(response.body.users).toEqual([
      { userId: 'alice', events: 2, beforeMicros: 145_000, afterMicros: 75_000, deltaMicros: -70_000, deltaUsd: -0.07 },
      { userId: 'bob', events: 1, beforeMicros: 0, afterMicros: 4_000, deltaMicros: 4_000, deltaUsd: 0.004 },
    ]);
    expect(response.body.models).toEqual([
      { model: 'acme/house-model', events: 1, beforeMicros: 0, afterMicros: 4_000, deltaMicros: 4_000, deltaUsd: 0.004 },
      { model: 'gpt-4o', events: 2, beforeMicros: 145_000, afterMicros: 75_000, deltaMicros: -70_000, deltaUsd: -0.07 },
    ]);
    expect(await snapshot()).toEqual(before);
  });

  it('lists the unpriced model on the admin analytics until it is priced', async () => {
    const overview = await testApp.api().get('/api/usage').query({ period: 'week' }).expect(200);
    expect(overview.body.unpricedModels).toEqual([{ model: 'acme/house-model', calls: 1, totalTokens: 3_500, lastSeenAt: inPeriod.toISOString() }]);
    const { text } = await testApp.api().get('/metrics/prometheus').expect(200);
    expect(text).toContain('token_ledger_unpriced_calls_total{model="acme/house-model",provider="compatible"} 1');
    expect(text).toContain('token_ledger_unpriced_tokens_total{model="acme/house-model"} 3500');
    expect(text).not.toMatch(/token_ledger_unpriced_calls_total\{model="gpt-4o"/);
  });

  it('shows the unpriced model on the dashboard (headless Chromium)', async () => {
    const browser = await launchChromium();
    try {
      const page = await browser.context.newPage();
      await page.goto(`${baseUrl}/usage#period=week`);
      await page.waitForSelector('body[data-state="auth"]');
      await page.fill('#api-key', testApp.adminKey);
      await page.click('#auth-form button[type="submit"]');
      await page.waitForSelector('body[data-state="ready"]', { timeout: 15_000 });
      const rows = await page.$$eval('#table-unpriced tbody tr', (trs: { cells: ArrayLike<{ innerText: string }> }[]) =>
        trs.map((row) => Array.from(row.cells, (cell) => cell.innerText.trim())),
      );
      expect(rows).toEqual([['acme/house-model', '1', formatTokens(3_500), inPeriod.toISOString().slice(0, 16).replace('T', ' ')]]);
    } finally {
      await browser.close();
    }
  }, 60_000);

  it('refuses a bad period with a 400 naming the field', async () => {
    const reversed = await testApp.api().post('/api/usage/reprice').send({ from: to, to: from }).expect(400);
    expect(reversed.body.message).toContain('from must be before to');
    for (const [body, field] of [
      [{ from: 'yesterday', to }, 'from'],
      [{ to }, 'from'],
      [{ from, to, dryRun: 'no' }, 'dryRun'],
      [{ from, to, userId: 'a b' }, 'userId'],
      [{ from, to, model: '' }, 'model'],
      [{ from, to, apply: true }, 'apply'],
    ] as const) {
      const bad = await testApp.api().post('/api/usage/reprice').send(body).expect(400);
      expect(bad.body.fields.map((entry: string | { field: string }) => (typeof entry === 'string' ? entry : entry.field))).toContain(field);
    }
  });

  it('the CLI prints the same dry run per user', async () => {
    let out = '';
    let err = '';
    const code = await main(['reprice', '--from', from, '--to', to, '--url', baseUrl, '--api-key', testApp.adminKey], {
      writeOut: (text) => (out += text),
      writeErr: (text) => (err += text),
    });
    expect(err).toBe('');
    expect(code).toBe(0);
    expect(out).toContain('DRY RUN');
    expect(out).toContain('Total: $0.145000 -> $0.079000 (-$0.066000)');
    expect(out).toMatch(/alice\s+2 event\(s\)\s+\$0\.145000 -> \$0\.075000\s+-\$0\.070000/);
    expect(out).toMatch(/bob\s+1 event\(s\)\s+\$0\.000000 -> \$0\.004000\s+\+\$0\.004000/);
  });

  it('run: changes exactly the affected events, aggregates and ledger figures; running again changes nothing', async () => {
    const before = await snapshot();
    const run = await reprice({ dryRun: false }).expect(200);
    expect(run.body).toMatchObject({ dryRun: false, examined: 4, changed: 3, total: { deltaMicros: -66_000 } });
    const after = await snapshot();

    // Events: the three affected ones moved, with what priced them; the others are untouched.
    const changed = new Map([
      ['rec-gpt4o', { cost: 45_000, source: 'catalog', entry: 'gpt-4o@2024-10-02' }],
      ['rec-gpt4o-cached', { cost: 30_000, source: 'catalog', entry: 'gpt-4o@2024-10-02' }],
      ['rec-house', { cost: 4_000, source: 'catalog', entry: 'acme/house-model@2024-01-01' }],
    ]);
    expect(after.events.map((event) => event._id)).toEqual(before.events.map((event) => event._id));
    for (const event of before.events) {
      const expected = changed.get(String(event._id));
      const now = byId(after.events, String(event._id));
      if (!expected) {
        expect(now).toEqual(event);
        continue;
      }
      const { cost_micros, cost_estimate, costSource, priceVersion, priceEntry, previousCostMicros, repricedAt, ...rest } = now;
      const { cost_micros: oldCost, cost_estimate: _oldEstimate, costSource: _oldSource, priceVersion: _oldVersion, priceEntry: _oldEntry, ...oldRest } = event;
      expect(rest).toEqual(oldRest);
      expect({ cost_micros, cost_estimate, costSource, priceVersion, priceEntry, previousCostMicros }).toEqual({
        cost_micros: expected.cost,
        cost_estimate: expected.cost / 1e6,
        costSource: expected.source,
        priceVersion: 'catalog test-fix-1',
        priceEntry: expected.entry,
        previousCostMicros: oldCost,
      });
      expect(repricedAt).toBeInstanceOf(Date);
    }

    // Ledger: alice -70,000 and bob +4,000 in totals, the day and the month; carol untouched.
    const day = dayKey(inPeriod);
    const month = day.slice(0, 7);
    for (const [userId, delta] of [['alice', -70_000], ['bob', 4_000]] as const) {
      const old = byUser(before.ledger, userId);
      const now = byUser(after.ledger, userId);
      expect(now.totalCostMicros).toBe(old.totalCostMicros + delta);
      expect(now.dailyUsage[day]).toEqual({ ...old.dailyUsage[day], costMicros: old.dailyUsage[day].costMicros + delta });
      expect(now.monthlyUsage[month]).toEqual({ ...old.monthlyUsage[month], costMicros: old.monthlyUsage[month].costMicros + delta });
      for (const field of ['totalTokens', 'totalPromptTokens', 'totalCompletionTokens', 'requestCount']) expect(now[field]).toBe(old[field]);
    }
    expect(byUser(after.ledger, 'carol')).toEqual(byUser(before.ledger, 'carol'));
    const aliceSessions = byUser(after.ledger, 'alice').recentSessions as Document[];
    expect(aliceSessions.find((session) => session.recordId === 'rec-gpt4o')).toMatchObject({ costMicros: 45_000, costSource: 'catalog', priceEntry: 'gpt-4o@2024-10-02' });
    expect(aliceSessions.find((session) => session.recordId === 'rec-mini')).toEqual(
      (byUser(before.ledger, 'alice').recentSessions as Document[]).find((session) => session.recordId === 'rec-mini'),
    );

    // Aggregates: the day and month of the period by -66,000 system-wide, by user as above; the outside day untouched.
    const systemDay = (documents: Document[]) => byId(documents, `day:${day}`);
    expect(systemDay(after.rollups).totals).toEqual({ ...systemDay(before.rollups).totals, costMicros: systemDay(before.rollups).totals.costMicros - 66_000 });
    expect(systemDay(after.rollups).cells.rag_answer['gpt-4o'].costMicros).toBe(systemDay(before.rollups).cells.rag_answer['gpt-4o'].costMicros - 70_000);
    expect(systemDay(after.rollups).providers.openai.costMicros).toBe(systemDay(before.rollups).providers.openai.costMicros - 70_000);
    expect(byId(after.rollups, `month:${month}`).totals.costMicros).toBe(byId(before.rollups, `month:${month}`).totals.costMicros - 66_000);
    expect(byId(after.userRollups, `day:${day}:alice`).totals.costMicros).toBe(byId(before.userRollups, `day:${day}:alice`).totals.costMicros - 70_000);
    expect(byId(after.userRollups, `day:${day}:bob`).totals.costMicros).toBe(byId(before.userRollups, `day:${day}:bob`).totals.costMicros + 4_000);
    expect(byId(after.rollups, `day:${dayKey(outOfPeriod)}`)).toEqual(byId(before.rollups, `day:${dayKey(outOfPeriod)}`));

    // The API shows what priced each event.
    const listed = await testApp.api().get('/api/v1/usage-events').query({ user: 'alice', limit: 10 }).expect(200);
    expect(listed.body.events.find((event: { record_id: string }) => event.record_id === 'rec-gpt4o')).toMatchObject({
      cost_micros: 45_000,
      costSource: 'catalog',
      priceVersion: 'catalog test-fix-1',
      priceEntry: 'gpt-4o@2024-10-02',
      previousCostMicros: 80_000,
      repricedAt: expect.stringMatching(/^\d{4}-\d{2}-\d{2}T/),
    });

    const overview = await testApp.api().get('/api/usage').query({ period: 'week' }).expect(200);
    expect(overview.body.unpricedModels).toEqual([]);

    // Twice: nothing to change, nothing changed.
    const again = await reprice({ dryRun: false }).expect(200);
    expect(again.body).toMatchObject({ changed: 0, unchanged: 4, resumed: 0, total: { deltaMicros: 0 }, users: [] });
    const third = await snapshot();
    expect(third.events).toEqual(after.events);
    expect(third.ledger).toEqual(after.ledger);
    expect(withoutUpdatedAt(third.rollups)).toEqual(withoutUpdatedAt(after.rollups));
    expect(withoutUpdatedAt(third.userRollups)).toEqual(withoutUpdatedAt(after.userRollups));
  });

  it('completes a re-pricing that stopped half way, moving each figure once', async () => {
    const events = testApp.app.get(UsageEventsService);
    const ledger = testApp.app.get(TokenTrackingService);
    const mispriced = (recordId: string) =>
      createUsageRecord({ recordId, occurredAt: inPeriod, model: 'gpt-4o', provider: 'openai', promptTokens: 10_000, completionTokens: 2_000, costMicros: 80_000 });
    await ledger.trackSafely('dave', mispriced('rec-dave'));
    await ledger.trackSafely('erin', mispriced('rec-erin'));
    await events.settled();
    await events.flushed();
    const before = await snapshot();
    const change = (id: string) => ({ repriceId: `reprice:${id}:80000:45000:catalog`, costMicros: 45_000, costSource: 'catalog', priceVersion: 'catalog test-fix-1', priceEntry: 'gpt-4o@2024-10-02' });
    // dave's run stopped right after moving the event; erin's after the aggregates and the ledger, before clearing the marker.
    const stored = (id: string) => testApp.db.collection('usage_events').findOne({ _id: id as never }) as never;
    expect(await events.beginRepricing(await stored('rec-dave'), change('rec-dave'))).not.toBeNull();
    const erin = (await events.beginRepricing(await stored('rec-erin'), change('rec-erin')))!;
    await events.correctAggregates(erin);
    await ledger.correctRecordCost('erin', { correctionId: erin.repriceId, recordId: 'rec-erin', occurredAt: inPeriod, deltaMicros: -35_000, costSource: 'catalog' });

    // Within their lease the events belong to the run that started them (it may still be at work).
    const early = await reprice({ dryRun: false }).expect(200);
    expect(early.body).toMatchObject({ resumed: 0, changed: 0 });
    expect(byUser((await snapshot()).ledger, 'dave').totalCostMicros).toBe(byUser(before.ledger, 'dave').totalCostMicros);

    testApp.app.get(Clock).advance(6 * 60_000);
    const run = await reprice({ dryRun: false }).expect(200);
    expect(run.body).toMatchObject({ resumed: 2, changed: 0 });
    const after = await snapshot();
    const day = dayKey(inPeriod);
    for (const userId of ['dave', 'erin']) {
      expect(byUser(after.ledger, userId).totalCostMicros).toBe(byUser(before.ledger, userId).totalCostMicros - 35_000);
      expect(byUser(after.ledger, userId).dailyUsage[day].costMicros).toBe(byUser(before.ledger, userId).dailyUsage[day].costMicros - 35_000);
      expect(byId(after.userRollups, `day:${day}:${userId}`).totals.costMicros).toBe(byId(before.userRollups, `day:${day}:${userId}`).totals.costMicros - 35_000);
    }
    expect(byId(after.rollups, `day:${day}`).totals.costMicros).toBe(byId(before.rollups, `day:${day}`).totals.costMicros - 70_000);
    expect(after.events.filter((event) => event.repricing !== undefined)).toEqual([]);

    const again = await reprice({ dryRun: false }).expect(200);
    expect(again.body).toMatchObject({ resumed: 0, changed: 0 });
    const third = await snapshot();
    expect(third.ledger).toEqual(after.ledger);
    expect(third.events).toEqual(after.events);
  });

  it('only admins may re-price', async () => {
    const created = await testApp.api().post('/admin/api-keys').send({ role: 'user', userId: 'alice', name: 'alice key' }).expect(201);
    await testApp.api(created.body.key).post('/api/usage/reprice').send({ from, to }).expect(403);
  });
});
