import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import request from 'supertest';
import { DASHBOARD_CSP, DashboardController } from '../src/dashboard/dashboard.controller';
import { formatInteger, formatMoney, formatTokens } from '../src/dashboard/web/usage-format';
import { DISPLAY_CURRENCY, DISPLAY_CURRENCY_RATE, expectedTotals, PERIOD_WINDOWS, SEED_EVENTS, SeededDashboardApp, startSeededDashboardApp } from './support/dashboard-seed';
import { HeadlessChromium, launchChromium } from './support/headless-chromium';

const ARTIFACTS = join(__dirname, '..', 'test-artifacts');
const LAPTOP = { width: 1366, height: 768 };
const PHONE = { width: 390, height: 844 };
const KEY_STORAGE = 'token-ledger.dashboard.apiKey';

type Problems = string[];

// The callbacks given to page.evaluate run in Chromium; this program has no DOM lib, so it declares what they touch.
interface BrowserElement {
  textContent: string | null;
  innerText: string;
  cells: ArrayLike<BrowserElement>;
  getBoundingClientRect(): { width: number };
}
declare const document: { body: { dataset: Record<string, string | undefined> }; documentElement: { scrollWidth: number }; getElementById(id: string): BrowserElement };
declare const window: {
  Chart: { getChart(canvas: BrowserElement): { data: { labels: string[]; datasets: { data: number[] }[] }; getDatasetMeta(index: number): { data: { y: number }[] } } | undefined };
};
declare const sessionStorage: { getItem(name: string): string | null };
declare const localStorage: { length: number };
declare const location: { hash: string };

describe(`${DashboardController.name} (headless Chromium)`, () => {
  let seeded: SeededDashboardApp;
  let browser: HeadlessChromium;
  const pages: Page[] = [];

  beforeAll(async () => {
    mkdirSync(ARTIFACTS, { recursive: true });
    [seeded, browser] = await Promise.all([startSeededDashboardApp(), launchChromium()]);
  });

  afterAll(async () => {
    await browser?.close();
    await seeded?.close();
  });

  afterEach(async () => {
    await Promise.all(pages.splice(0).map((page) => page.close()));
  });

  /** A new tab (its own sessionStorage), collecting script errors and CSP violations. */
  async function newTab(viewport = LAPTOP): Promise<{ page: Page; problems: Problems }> {
    const page = await browser.context.newPage();
    pages.push(page);
    await page.setViewportSize(viewport);
    const problems: Problems = [];
    page.on('pageerror', (error) => problems.push(`pageerror: ${error.message}`));
    page.on('console', (message) => {
      if (/Content Security Policy|Refused to/i.test(message.text())) problems.push(`csp: ${message.text()}`);
    });
    return { page, problems };
  }

  async function ready(page: Page): Promise<void> {
    await page.waitForSelector('body[data-state="ready"]', { timeout: 15_000 });
  }

  async function signIn(page: Page, key: string, path = '/usage'): Promise<void> {
    await page.goto(`${seeded.baseUrl}${path}`);
    await page.waitForSelector('body[data-state="auth"]');
    await page.fill('#api-key', key);
    await page.click('#auth-form button[type="submit"]');
    await ready(page);
  }

  const text = (page: Page, selector: string) => page.locator(selector).innerText();

  async function tableRows(page: Page, id: string): Promise<string[][]> {
    return page.$$eval(`#${id} tbody tr`, (rows: BrowserElement[]) => rows.map((row) => Array.from(row.cells, (cell) => cell.innerText.trim())));
  }

  /** What Chart.js drew on a canvas: its labels and series, or null when no chart is there. */
  async function chartData(page: Page, canvasId: string): Promise<{ labels: string[]; series: number[][]; width: number } | null> {
    return page.evaluate((id) => {
      const canvas = document.getElementById(id);
      const chart = window.Chart.getChart(canvas);
      if (!chart) return null;
      return { labels: chart.data.labels, series: chart.data.datasets.map((dataset) => dataset.data), width: canvas.getBoundingClientRect().width };
    }, canvasId);
  }

  async function choosePeriod(page: Page, label: string): Promise<void> {
    const before = await page.evaluate(() => Number(document.body.dataset.refreshes ?? 0));
    await page.getByRole('button', { name: label, exact: true }).click();
    await page.waitForFunction((count) => Number(document.body.dataset.refreshes) > count && document.body.dataset.state === 'ready', before);
  }

  async function expectSystemCards(page: Page, period: keyof typeof PERIOD_WINDOWS): Promise<void> {
    const expected = expectedTotals(PERIOD_WINDOWS[period], seeded.gateway);
    expect(await text(page, '#card-tokens')).toBe(formatTokens(expected.totalTokens));
    expect(await text(page, '#card-tokens-sub')).toContain(`${formatInteger(expected.totalTokens)} tokens`);
    expect(await text(page, '#card-requests')).toBe(formatInteger(expected.requests));
    expect(await text(page, '#card-users')).toBe(String(expected.users.size));
    expect(await text(page, '#card-cost')).toBe(formatMoney(expected.costMicros / 1e6, 'USD'));
    expect(await text(page, '#card-cost-sub')).toBe(`${formatMoney((expected.costMicros / 1e6) * DISPLAY_CURRENCY_RATE, DISPLAY_CURRENCY)} (${DISPLAY_CURRENCY})`);
  }

  it('serves the page at /usage and /token-usage, its modules and Chart.js, publicly and under a strict CSP', async () => {
    for (const path of ['/usage', '/token-usage']) {
      const page = await request(seeded.baseUrl).get(path).expect(200);
      expect(page.headers['content-type']).toBe('text/html; charset=utf-8');
      expect(page.headers['content-security-policy']).toBe(DASHBOARD_CSP);
      expect(page.text).toContain('<script type="module" src="/dashboard/assets/dashboard.browser.js">');
      const cached = await request(seeded.baseUrl).get(path).set('if-none-match', page.headers.etag).expect(304);
      expect(cached.text).toBe('');
    }
    const script = await request(seeded.baseUrl).get('/dashboard/assets/dashboard.browser.js').expect(200);
    expect(script.headers['content-type']).toBe('text/javascript; charset=utf-8');
    expect(script.text).toContain("from './usage-format.js'");
    const chartJs = await request(seeded.baseUrl).get('/dashboard/assets/chart.umd.js').expect(200);
    expect(chartJs.text.length).toBeGreaterThan(100_000);
    await request(seeded.baseUrl).get('/dashboard/assets/..%2Fdashboard.module.ts').expect(404);
    await request(seeded.baseUrl).get('/dashboard/assets/secrets.json').expect(404);
    // The API keeps helmet's policy.
    const api = await request(seeded.baseUrl).get('/api/usage').set('authorization', `Bearer ${seeded.adminKey}`).expect(200);
    expect(api.headers['content-security-policy']).not.toBe(DASHBOARD_CSP);
  });

  it('asks for a key, keeps it for the tab only and never puts it in the URL', async () => {
    const { page, problems } = await newTab();
    await signIn(page, seeded.adminKey);
    expect(page.url()).not.toContain(seeded.adminKey);
    expect(await page.evaluate((name) => sessionStorage.getItem(name), KEY_STORAGE)).toBe(seeded.adminKey);
    expect(await page.evaluate(() => localStorage.length)).toBe(0);
    expect(await browser.context.cookies()).toEqual([]);
    await page.reload();
    await ready(page);
    expect(await text(page, '#view-label')).toBe('System view · admin key');

    await page.click('#sign-out');
    await page.waitForSelector('body[data-state="auth"]');
    expect(await page.evaluate((name) => sessionStorage.getItem(name), KEY_STORAGE)).toBeNull();
    expect(problems).toEqual([]);
  });

  it('shows the system view to an admin key: cards, charts and tables with the seeded figures', async () => {
    const { page, problems } = await newTab();
    await signIn(page, seeded.adminKey);
    expect(await text(page, '#system-range')).toBe('Usage for this month: 2030-06-01 to 2030-06-15 (UTC).');
    await expectSystemCards(page, 'month');

    const trend = await chartData(page, 'chart-trend');
    expect(trend?.labels).toHaveLength(30);
    expect(trend?.labels.at(-1)).toBe('06-15');
    expect(trend?.series[0].at(-1)).toBe(expectedTotals(PERIOD_WINDOWS.today, seeded.gateway).totalTokens);
    expect(trend?.series[1].at(-1)).toBe(expectedTotals(PERIOD_WINDOWS.today, seeded.gateway).requests);
    expect(trend?.series[0][trend.labels.indexOf('06-03')]).toBe(9000);
    expect(trend!.width).toBeGreaterThan(600);

    const tiers = await chartData(page, 'chart-tiers');
    expect(tiers?.labels[0]).toBe('JIGGA: 14K (56.5%)');
    expect(await tableRows(page, 'table-tiers')).toEqual(
      expect.arrayContaining([
        ['JIGGA', '14K', '56.5%', '2'],
        ['JIVE', '3.5K', '14.1%', '3'],
      ]),
    );
    const providers = await chartData(page, 'chart-providers');
    expect(providers?.labels.slice(0, 2)).toEqual(['openrouter', 'anthropic']);
    expect(providers?.series[0].slice(0, 2)).toEqual([19_730, 5000]);
    expect((await tableRows(page, 'table-providers'))[0]).toEqual(['openrouter', '19.7K', '8', '0']);

    expect(await tableRows(page, 'table-tools')).toEqual([
      ['generate_image', '2', '50%', '1', '1 s'],
      ['search_web', '1', '100%', '0', '300 ms'],
    ]);
    const users = await tableRows(page, 'table-users');
    expect(users.map((row) => row[0])).toEqual(['carol', 'bob', 'alice']);
    expect(users[0]).toEqual(['carol', '2', '14K', '$0.072']);
    const operations = await tableRows(page, 'table-operations');
    expect(operations).toContainEqual(['plugin_generation', '1', '9K', '$0.045', '4 s', '0']);
    expect(operations).toContainEqual(['rag_answer', '3', '9.8K', '$0.0281', '2.2 s', '1']);
    expect(await tableRows(page, 'table-models')).toContainEqual(['anthropic/claude-3.5-sonnet', '1', '5K', '$0.027', '2.5 s', '1']);
    const cache = (await request(seeded.baseUrl).get('/api/v1/search/cache/stats').set('authorization', `Bearer ${seeded.adminKey}`).expect(200)).body;
    const cacheRows = await tableRows(page, 'table-search-cache');
    expect(cacheRows.map((row) => row[0])).toEqual(['All searches (no embedding tokens)', 'Session', 'Persistent', 'Results']);
    expect(cacheRows[0][1]).toBe(String(cache.searches));
    expect(cacheRows[2][4]).toBe(String(cache.persistent.entries));

    await page.screenshot({ path: join(ARTIFACTS, 'dashboard-admin-laptop.png'), fullPage: true });
    await page.setViewportSize(PHONE);
    await page.waitForFunction(() => document.getElementById('chart-trend').getBoundingClientRect().width < 400);
    expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(PHONE.width);
    await page.screenshot({ path: join(ARTIFACTS, 'dashboard-admin-phone.png'), fullPage: true });
    expect(problems).toEqual([]);
  });

  it('draws Requests apart from Tokens in the 30-day trend even when every request costs the same tokens', async () => {
    const { page, problems } = await newTab();
    // The service's trend, made proportional (1,000 tokens a request): two lines on axes scaled alike coincided.
    await page.route('**/api/usage?*', async (route) => {
      const response = await route.fetch();
      const body = (await response.json()) as { dailyTrend: { totalTokens: number; requestCount: number }[] };
      body.dailyTrend = body.dailyTrend.map((day, index) => ({ ...day, requestCount: (index % 4) + 1, totalTokens: ((index % 4) + 1) * 1000 }));
      await route.fulfill({ response, json: body });
    });
    await signIn(page, seeded.adminKey);
    const trend = await chartData(page, 'chart-trend');
    expect(trend?.series[1].slice(0, 4)).toEqual([1, 2, 3, 4]);
    const heights = await page.evaluate(() => {
      const chart = window.Chart.getChart(document.getElementById('chart-trend'))!;
      return [0, 1].map((index) => chart.getDatasetMeta(index).data.map((element) => Math.round(element.y)));
    });
    const hidden = heights[0].map((_, day) => day).filter((day) => Math.abs(heights[0][day] - heights[1][day]) < 4);
    expect(hidden).toEqual([]);
    expect(problems).toEqual([]);
  });

  it('changes every figure with the period selector', async () => {
    const { page, problems } = await newTab();
    await signIn(page, seeded.adminKey, '/token-usage');
    for (const [label, period] of [['Today', 'today'], ['7 days', 'week'], ['Year', 'year'], ['All time', 'all']] as const) {
      await choosePeriod(page, label);
      await expectSystemCards(page, period);
      expect(await page.getByRole('button', { name: label, exact: true }).getAttribute('aria-pressed')).toBe('true');
      expect(page.url()).toContain(`#period=${period}`);
    }
    // All time includes erin's 1.5M-token batch embedding from last year.
    expect(await text(page, '#card-tokens')).toBe('1.5M');
    expect(await text(page, '#card-users')).toBe('5');
    await choosePeriod(page, 'Today');
    expect(await tableRows(page, 'table-users')).toEqual([
      ['bob', '2', '2.5K', '$0.0006'],
      ['alice', '5', formatTokens(1230 + seeded.gateway.totalTokens), formatMoney((271 + seeded.gateway.costMicros) / 1e6, 'USD')],
    ]);
    expect(problems).toEqual([]);
  });

  it('fetches again on auto-refresh, at the interval given by ?refresh=, and stops when switched off', async () => {
    const { page, problems } = await newTab();
    const fetches: string[] = [];
    page.on('request', (sent) => {
      if (new URL(sent.url()).pathname === '/api/usage') fetches.push(sent.url());
    });
    await signIn(page, seeded.adminKey, '/usage?refresh=400');
    expect(await text(page, '#auto-refresh-label')).toBe('Auto-refresh (400 ms)');
    const before = Number(await text(page, '#card-requests'));

    // New usage between refreshes shows up without touching the page.
    await request(seeded.baseUrl)
      .post('/api/usage')
      .set('authorization', `Bearer ${seeded.serviceKey}`)
      .send({ toolName: 'search_web', success: true, executionTimeMs: 200, userId: 'bob' })
      .expect(201);
    const initial = fetches.length;
    await page.check('#auto-refresh');
    await page.waitForFunction((count) => Number(document.getElementById('card-requests').textContent) === count, before + 1, { timeout: 10_000 });
    await page.waitForFunction(() => Number(document.body.dataset.refreshes) >= 4, undefined, { timeout: 10_000 });
    expect(fetches.length).toBeGreaterThanOrEqual(initial + 2);

    await page.uncheck('#auto-refresh');
    await page.waitForSelector('body[data-state="ready"]');
    const stopped = fetches.length;
    await page.waitForTimeout(1200);
    expect(fetches.length).toBe(stopped);
    expect(problems).toEqual([]);
  });

  it('shows an error message, not a blank page, for a bad key and for a failing service', async () => {
    const { page, problems } = await newTab();
    await page.goto(`${seeded.baseUrl}/usage`);
    await page.waitForSelector('body[data-state="auth"]');
    await page.fill('#api-key', 'tl_admin_this-key-does-not-exist');
    await page.click('#auth-form button[type="submit"]');
    await page.waitForSelector('#error:not([hidden])');
    expect(await text(page, '#error')).toBe('The API key was not accepted: Unknown API key');
    expect(await page.locator('#auth').isVisible()).toBe(true);
    expect(await page.locator('#system-view').isVisible()).toBe(false);
    expect(await page.evaluate((name) => sessionStorage.getItem(name), KEY_STORAGE)).toBeNull();

    await page.fill('#api-key', seeded.adminKey);
    await page.click('#auth-form button[type="submit"]');
    await ready(page);
    expect(await page.locator('#error').isVisible()).toBe(false);
    const figures = await text(page, '#card-tokens');
    await page.route('**/api/usage?*', (route) => route.fulfill({ status: 503, contentType: 'application/json', body: JSON.stringify({ statusCode: 503, message: 'MongoDB is not reachable' }) }));
    await page.click('#refresh-now');
    await page.waitForSelector('body[data-state="error"]');
    expect(await text(page, '#error')).toMatch(/^MongoDB is not reachable \(HTTP 503\)\. Showing the figures loaded at \d\d:\d\d:\d\d\.$/);
    expect(await text(page, '#card-tokens')).toBe(figures);
    await page.screenshot({ path: join(ARTIFACTS, 'dashboard-error-laptop.png') });
    await page.unroute('**/api/usage?*');
    await page.click('#refresh-now');
    await ready(page);
    expect(await page.locator('#error').isVisible()).toBe(false);
    expect(problems).toEqual([]);
  });

  it("opens a user's view from the top users table: totals, daily chart, sessions, window and limits", async () => {
    const { page, problems } = await newTab();
    await signIn(page, seeded.adminKey);
    await page.locator('#table-users').getByRole('link', { name: 'alice' }).click();
    await page.waitForSelector('#user-view:not([hidden])');
    await ready(page);
    expect(page.url()).toContain('#period=month&user=alice');
    expect(await text(page, '#user-title')).toContain('User alice');
    expect(await text(page, '#user-title .badge')).toBe('FREE tier');
    const month = expectedTotals(PERIOD_WINDOWS.month, seeded.gateway, 'alice');
    expect(await text(page, '#user-card-tokens')).toBe(formatTokens(month.totalTokens));
    // The breakdown names every kind of token the total counts, embedding tokens too.
    const embedded = SEED_EVENTS.filter((event) => event.user === 'alice' && event.at.slice(0, 10) >= PERIOD_WINDOWS.month.from! && event.at.slice(0, 10) <= PERIOD_WINDOWS.month.to).reduce(
      (sum, event) => sum + (event.embedding ?? 0),
      0,
    );
    expect(embedded).toBeGreaterThan(0);
    expect(await text(page, '#user-card-tokens-sub')).toMatch(new RegExp(`prompt .+ / completion .+ / embedding ${formatTokens(embedded).replace('.', '\\.')}$`));
    expect(await text(page, '#user-card-requests')).toBe(formatInteger(month.requests));
    expect(await text(page, '#user-card-requests-sub')).toBe('1 failed');
    expect(await text(page, '#user-card-cost')).toBe(formatMoney(month.costMicros / 1e6, 'USD'));
    // The ledger's all-time totals: five seeded calls and the gateway call (tool calls carry no tokens).
    expect(await text(page, '#user-card-all-time')).toBe(formatTokens(7230 + seeded.gateway.totalTokens));
    expect(await text(page, '#user-card-all-time-sub')).toMatch(/^6 requests · \$0\.\d+ since 2030-06-06$/);

    const daily = await chartData(page, 'chart-user-daily');
    expect(daily?.labels).toHaveLength(15);
    expect(daily?.series[0][daily.labels.indexOf('06-06')]).toBe(3600);
    expect(daily?.series[0].at(-1)).toBe(1230 + seeded.gateway.totalTokens);

    expect(await text(page, '#window-used')).toBe(`${formatTokens(seeded.gateway.totalTokens)} tokens`);
    expect(await text(page, '#window-limit')).toMatch(/^of 100K \(/);
    expect(await text(page, '#window-reset')).toBe('Window resets at 2030-06-16 12:00:00 UTC.');
    // FREE: 100K tokens a rolling 24 h (only the live gateway call counts there), 100K a day and $1 a month (from the ledger).
    const today = expectedTotals(PERIOD_WINDOWS.today, seeded.gateway, 'alice');
    expect(await tableRows(page, 'table-limits')).toEqual([
      ['Rolling 24 h tokens', '100,000', formatInteger(100_000 - seeded.gateway.totalTokens)],
      ['Tokens today', '100,000', formatInteger(100_000 - today.totalTokens)],
      ['Cost this month', '$1.00', formatMoney(1 - month.costMicros / 1e6, 'USD')],
    ]);
    const sessions = await tableRows(page, 'table-sessions');
    expect(sessions).toHaveLength(6);
    expect(sessions.map((row) => row[0])).toEqual(sessions.map((row) => row[0]).sort().reverse());
    expect(sessions.map((row) => row[1])).toContain('chat_completion');
    expect(sessions).toContainEqual(['2030-06-06 12:00:00', 'rag_answer', 'openai/gpt-4o-mini', '3,600', '$0.0008', '2.2 s', 'ok']);
    expect(await tableRows(page, 'table-user-operations')).toContainEqual(['tool_call', '2', '0', '$0.00', '1 s', '1']);

    await page.screenshot({ path: join(ARTIFACTS, 'dashboard-user-admin-laptop.png'), fullPage: true });
    await page.click('#back-link a');
    await page.waitForSelector('#system-view:not([hidden])');
    expect(problems).toEqual([]);
  });

  it("opens a user key's own view, with no system data, and follows the period selector", async () => {
    const { page, problems } = await newTab(PHONE);
    await signIn(page, seeded.aliceKey);
    expect(await text(page, '#view-label')).toBe('Your usage · user key for alice');
    expect(await page.locator('#back-link').isVisible()).toBe(false);
    expect(await page.locator('#user-lookup').isVisible()).toBe(false);
    expect(await page.locator('#system-view').isVisible()).toBe(false);
    expect(await text(page, '#user-card-tokens')).toBe(formatTokens(expectedTotals(PERIOD_WINDOWS.month, seeded.gateway, 'alice').totalTokens));
    expect(await text(page, '#user-card-cost-sub')).toBe('USD');
    expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(PHONE.width);
    await page.screenshot({ path: join(ARTIFACTS, 'dashboard-user-phone.png'), fullPage: true });

    await choosePeriod(page, '7 days');
    const week = expectedTotals(PERIOD_WINDOWS.week, seeded.gateway, 'alice');
    expect(await text(page, '#user-card-tokens')).toBe(formatTokens(week.totalTokens));
    expect(await text(page, '#user-card-requests')).toBe(formatInteger(week.requests));
    expect((await chartData(page, 'chart-user-daily'))?.labels).toHaveLength(7);
    await choosePeriod(page, 'Year');
    expect(await text(page, '#user-range')).toBe('Usage for this year: 2030-01-01 to 2030-06-15 (UTC).');

    // A user key always opens its own user, whatever the address names.
    const refreshes = await page.evaluate(() => Number(document.body.dataset.refreshes));
    await page.evaluate(() => (location.hash = '#period=month&user=bob'));
    await page.waitForFunction((count) => Number(document.body.dataset.refreshes) > count, refreshes);
    expect(await text(page, '#user-title')).toContain('User alice');
    expect(problems).toEqual([]);
  });

  it('lets a service key pick the user whose usage it opens', async () => {
    const { page, problems } = await newTab();
    await signIn(page, seeded.serviceKey);
    expect(await text(page, '#view-label')).toBe('Service key');
    expect(await text(page, '#status')).toBe('A service key acts for any user: enter a user id to open their usage.');
    expect(await page.locator('#system-view').isVisible()).toBe(false);
    await page.fill('#user-id', 'bob');
    await page.click('#user-form button[type="submit"]');
    await page.waitForSelector('#user-view:not([hidden])');
    await ready(page);
    expect(await text(page, '#user-title')).toBe('User bob JIVE tier');
    expect(await text(page, '#user-card-tokens')).toBe(formatTokens(expectedTotals(PERIOD_WINDOWS.month, seeded.gateway, 'bob').totalTokens));
    expect(await page.locator('#back-link').isVisible()).toBe(false);
    expect(problems).toEqual([]);
  });

  it('shows empty states for a user with no usage', async () => {
    const { page, problems } = await newTab();
    await page.goto(`${seeded.baseUrl}/usage#period=today&user=nobody`);
    await page.waitForSelector('body[data-state="auth"]');
    await page.fill('#api-key', seeded.adminKey);
    await page.click('#auth-form button[type="submit"]');
    await page.waitForSelector('#user-view:not([hidden])');
    await ready(page);
    expect(await text(page, '#user-card-tokens')).toBe('0');
    expect(await text(page, '#user-card-all-time-sub')).toBe('No usage recorded yet');
    expect(await page.locator('#chart-user-daily').isVisible()).toBe(false);
    expect(await text(page, 'figure:has(#chart-user-daily) .empty')).toBe('No usage in this period.');
    expect(await tableRows(page, 'table-sessions')).toEqual([['No sessions recorded yet.']]);
    expect(await text(page, '#window-reset')).toBe('No 24-hour window open.');
    await page.screenshot({ path: join(ARTIFACTS, 'dashboard-user-empty-laptop.png'), fullPage: true });
    expect(problems).toEqual([]);
  });
});
