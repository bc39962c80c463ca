import type { Chart as ChartJs, ChartConfiguration } from 'chart.js';
import { formatDuration, formatInteger, formatMoney, formatPercent, formatTokens } from './usage-format.js';

/** Chart.js's UMD build, loaded by a classic script before this module runs. */
declare const Chart: typeof ChartJs | undefined;

// --- API shapes: the response DTOs this page reads -------------------------------------------
// GET /api/usage (src/analytics/dto/usage-stats.dto.ts)
type Period = 'today' | 'week' | 'month' | 'year' | 'all';
interface Figures {
  inputTokens: number;
  outputTokens: number;
  totalTokens: number;
  requestCount: number;
  costUsd: number;
  cost: number;
}
interface DimensionFigures extends Figures {
  failureCount: number;
  avgLatencyMs: number;
}
interface ToolUsage {
  toolName: string;
  callCount: number;
  successCount: number;
  failureCount: number;
  successRate: number;
  avgExecutionTimeMs: number;
}
interface TopUser {
  userId: string;
  totalTokens: number;
  requestCount: number;
  costUsd: number;
  cost: number;
}
interface UsageOverview {
  period: Period;
  from: string | null;
  to: string;
  timezone: string;
  currency: string;
  currencyRate: number;
  summary: Figures & { activeUsers: number; successRate: number };
  byTier: (Figures & { tier: string })[];
  toolUsage: ToolUsage[];
  providers: (DimensionFigures & { provider: string })[];
  models: (DimensionFigures & { model: string })[];
  operations: (DimensionFigures & { operation: string })[];
  dailyTrend: (Figures & { date: string })[];
  topUsers: TopUser[];
  unpricedModels?: { model: string; calls: number; totalTokens: number; lastSeenAt: string }[];
}
// GET /api/v1/search/token-usage (src/analytics/dto/search-token-usage.dto.ts)
interface UsageStats {
  operations: number;
  successful_operations: number;
  failed_operations: number;
  prompt_tokens: number;
  completion_tokens: number;
  embedding_tokens: number;
  total_tokens: number;
  cost_estimate: number;
  avg_response_time: number;
}
interface UserUsage {
  user_id: string;
  days: number;
  from: string;
  to: string;
  timezone: string;
  totals: UsageStats;
  by_operation: Record<string, UsageStats>;
  by_model: Record<string, UsageStats>;
  by_day: (UsageStats & { date: string })[];
}
// GET /user/:userId/token-usage (src/token-tracking/dto/user-token-usage-response.dto.ts)
interface RecentSession {
  operationType: string;
  model: string;
  totalTokens: number;
  costUsd: number;
  latencyMs: number;
  success: boolean;
  errorMessage?: string;
  timestamp: string;
}
interface LedgerUsage {
  userId: string;
  totalTokens: number;
  requestCount: number;
  costUsd: number;
  firstRequestAt: string | null;
  lastRequestAt: string | null;
  recentSessions: RecentSession[];
}
// GET /api/v1/tokens/usage/:userId (src/limits/dto/window-usage.dto.ts)
interface WindowUsage {
  current_usage: number;
  reset_at: string | null;
  tracking_enabled: boolean;
  window_hours: number;
  tier: string;
  limits: { rolling24hTokens: number | null; dailyTokens: number | null; monthlyCostUsd: number | null };
  remaining: { rolling24hTokens: number | null; dailyTokens: number | null; monthlyCostUsd: number | null } | null;
}

type Identity = { role: 'admin' } | { role: 'user'; userId: string } | { role: 'service' };

const PERIODS: readonly Period[] = ['today', 'week', 'month', 'year', 'all'];
const PERIOD_LABELS: Record<Period, string> = { today: 'today', week: 'the last 7 days', month: 'this month', year: 'this year', all: 'all time' };
/** The longest range GET /api/v1/search/token-usage serves. */
const MAX_DAYS = 366;
const KEY_STORAGE = 'token-ledger.dashboard.apiKey';
const AUTO_REFRESH_STORAGE = 'token-ledger.dashboard.autoRefresh';
const DEFAULT_REFRESH_MS = 30_000;
/** Okabe-Ito hues, darkened to at least 3:1 against white. */
const PALETTE = ['#0072B2', '#C2410C', '#047857', '#5E4FA2', '#B04A8C', '#8A6A00', '#555555'];
const CHART_TEXT = '#33364a';
const GRID = '#e3e6ec';

// --- state ---------------------------------------------------------------------------------------

const state = {
  period: 'month' as Period,
  user: null as string | null,
  identity: null as Identity | null,
  /** Display currency learnt from /api/usage (admin only); user keys see USD. */
  currency: null as { code: string; rate: number } | null,
  /** Each refresh's number; a slower, older response is dropped. */
  generation: 0,
  refreshMs: refreshInterval(),
  timer: undefined as number | undefined,
  refreshes: 0,
};
const charts = new Map<string, ChartJs>();

class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

// --- small DOM helpers --------------------------------------------------------------------------

function $(id: string): HTMLElement {
  const element = document.getElementById(id);
  if (!element) throw new Error(`#${id} is missing from the page`);
  return element;
}

function setText(id: string, text: string): void {
  $(id).textContent = text;
}

type Cell = string | Node | { text: string; className?: string; title?: string };

/** A name that may wrap after its separators (openai/ gpt-4o-mini, plugin_ generation) rather than mid-word. */
function breakable(name: string): Node {
  const fragment = document.createDocumentFragment();
  for (const part of name.split(/(?<=[_/.-])/)) fragment.append(part, document.createElement('wbr'));
  return fragment;
}

function cell(content: Cell, numeric: boolean): HTMLTableCellElement {
  const td = document.createElement('td');
  if (numeric) td.className = 'num';
  if (typeof content === 'string') td.textContent = content;
  else if (content instanceof Node) td.append(content);
  else {
    const span = document.createElement('span');
    span.textContent = content.text;
    if (content.className) span.className = content.className;
    if (content.title) span.title = content.title;
    td.append(span);
  }
  return td;
}

/** Fills a table body; cells after the first are numeric unless `textColumns` says otherwise. */
function fillTable(id: string, rows: Cell[][], emptyText: string, textColumns: number[] = [0]): void {
  const table = $(id) as HTMLTableElement;
  const body = table.tBodies[0];
  body.replaceChildren();
  if (rows.length === 0) {
    const tr = body.insertRow();
    const td = cell(emptyText, false);
    td.colSpan = table.tHead?.rows[0]?.cells.length ?? 1;
    td.className = 'empty-row';
    tr.append(td);
    return;
  }
  // Columns marked optional in the header are hidden on narrow screens, cells included.
  const optional = [...(table.tHead?.rows[0]?.cells ?? [])].map((th) => th.classList.contains('opt'));
  for (const row of rows) {
    const tr = body.insertRow();
    row.forEach((content, index) => {
      const td = cell(content, !textColumns.includes(index));
      if (optional[index]) td.classList.add('opt');
      tr.append(td);
    });
  }
}

function swatch(color: string, label: string): Node {
  const fragment = document.createDocumentFragment();
  const box = document.createElement('span');
  box.className = 'swatch';
  box.style.backgroundColor = color;
  fragment.append(box, label);
  return fragment;
}

function link(href: string, text: string): HTMLAnchorElement {
  const anchor = document.createElement('a');
  anchor.href = href;
  anchor.textContent = text;
  return anchor;
}

function utcTime(iso: string): string {
  return iso.replace('T', ' ').slice(0, 19);
}

/** Date and time that wrap between each other, never inside either. */
function dateTime(iso: string): Node {
  const [date, time] = utcTime(iso).split(' ');
  const fragment = document.createDocumentFragment();
  for (const [index, part] of [date, time].entries()) {
    const span = document.createElement('span');
    span.className = 'nowrap';
    span.textContent = part;
    fragment.append(...(index ? [' ', span] : [span]));
  }
  return fragment;
}

function share(part: number, whole: number): string {
  if (whole === 0) return '—';
  const ratio = part / whole;
  return ratio > 0 && ratio < 0.001 ? '<0.1%' : formatPercent(Math.round(ratio * 1000) / 1000);
}

// --- API ------------------------------------------------------------------------------------

function storedKey(): string | null {
  return sessionStorage.getItem(KEY_STORAGE);
}

async function api<T>(path: string): Promise<T> {
  let response: Response;
  try {
    response = await fetch(path, { headers: { authorization: `Bearer ${storedKey() ?? ''}`, accept: 'application/json' }, cache: 'no-store' });
  } catch (error) {
    throw new ApiError(0, `The service could not be reached (${(error as Error).message}).`);
  }
  if (!response.ok) {
    let message = response.statusText || 'request failed';
    try {
      const body = (await response.json()) as { message?: unknown };
      if (typeof body.message === 'string') message = body.message;
    } catch {
      // Not JSON: keep the status text.
    }
    throw new ApiError(response.status, message);
  }
  return (await response.json()) as T;
}

function query(params: Record<string, string | number | undefined>): string {
  const search = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) if (value !== undefined) search.set(name, String(value));
  return search.toString();
}

/** Which view this key opens: admin keys read /api/usage; a user key's own id comes back from the search API. */
async function identify(): Promise<Identity> {
  try {
    await api('/api/usage/today');
    return { role: 'admin' };
  } catch (error) {
    if (!(error instanceof ApiError) || error.status !== 403) throw error;
  }
  try {
    const own = await api<UserUsage>('/api/v1/search/token-usage?days=1');
    return { role: 'user', userId: own.user_id };
  } catch (error) {
    // A service key acts for any user but names none: it has to pick one.
    if (error instanceof ApiError && error.status === 400) return { role: 'service' };
    throw error;
  }
}

// --- navigation -------------------------------------------------------------------------------

function readHash(): void {
  const params = new URLSearchParams(location.hash.slice(1));
  const period = params.get('period') as Period | null;
  state.period = period && PERIODS.includes(period) ? period : 'month';
  state.user = params.get('user') || null;
  for (const button of document.querySelectorAll<HTMLButtonElement>('[data-period]')) {
    button.setAttribute('aria-pressed', String(button.dataset.period === state.period));
  }
}

function hashFor(change: { period?: Period; user?: string | null }): string {
  const period = change.period ?? state.period;
  const user = change.user === undefined ? state.user : change.user;
  return `#${query({ period, user: user ?? undefined })}`;
}

function navigate(change: { period?: Period; user?: string | null }): void {
  const hash = hashFor(change);
  if (hash === location.hash) void refresh();
  else location.hash = hash; // hashchange refreshes
}

function refreshInterval(): number {
  // ?refresh=<ms> shortens the interval (tests, demos); the key never goes in the URL.
  const requested = Number(new URLSearchParams(location.search).get('refresh'));
  return Number.isFinite(requested) && requested >= 100 ? requested : DEFAULT_REFRESH_MS;
}

function setAutoRefresh(on: boolean): void {
  window.clearInterval(state.timer);
  state.timer = on ? window.setInterval(() => document.hidden || void refresh(), state.refreshMs) : undefined;
  sessionStorage.setItem(AUTO_REFRESH_STORAGE, on ? 'on' : 'off');
  ($('auto-refresh') as HTMLInputElement).checked = on;
}

// --- page states ------------------------------------------------------------------------------

function setPageState(value: 'auth' | 'loading' | 'ready' | 'error'): void {
  document.body.dataset.state = value;
  document.body.classList.toggle('is-loading', value === 'loading');
  document.body.setAttribute('aria-busy', String(value === 'loading'));
}

function showAuth(message?: string): void {
  setAutoRefresh(false);
  for (const id of ['system-view', 'user-view', 'controls', 'user-lookup']) $(id).hidden = true;
  $('auth').hidden = false;
  setText('view-label', 'token-ledger');
  setText('status', '');
  setText('updated-at', '');
  showError(message);
  setPageState('auth');
  ($('api-key') as HTMLInputElement).focus();
}

function showError(message?: string): void {
  $('error').hidden = !message;
  setText('error', message ?? '');
}

function showFailure(error: unknown): void {
  if (error instanceof ApiError && error.status === 401) {
    sessionStorage.removeItem(KEY_STORAGE);
    state.identity = null;
    showAuth(`The API key was not accepted: ${error.message}`);
    return;
  }
  const status = error instanceof ApiError && error.status > 0 ? ` (HTTP ${error.status})` : '';
  const text = error instanceof Error ? error.message : String(error);
  const stale = document.body.dataset.loadedAt ? ` Showing the figures loaded at ${document.body.dataset.loadedAt}.` : '';
  showError(`${text}${status}.${stale}`.replace(/\.\./g, '.'));
  setPageState('error');
}

function setChartEmpty(canvasId: string, empty: boolean): void {
  const figure = $(canvasId).closest('figure');
  if (!figure) return;
  figure.classList.toggle('is-empty', empty);
  const message = figure.querySelector<HTMLElement>('.empty');
  if (message) message.hidden = !empty;
}

function drawChart(canvasId: string, config: ChartConfiguration): void {
  charts.get(canvasId)?.destroy();
  charts.delete(canvasId);
  if (typeof Chart === 'undefined') throw new Error('The chart library did not load; tables are still shown');
  charts.set(canvasId, new Chart($(canvasId) as HTMLCanvasElement, config));
}

function markReady(): void {
  const now = new Date();
  const time = now.toLocaleTimeString('en-GB');
  document.body.dataset.loadedAt = time;
  state.refreshes += 1;
  document.body.dataset.refreshes = String(state.refreshes);
  setText('updated-at', `Updated at ${time}`);
  setText('status', '');
  showError();
  setPageState('ready');
}

// --- refresh ----------------------------------------------------------------------------------

async function refresh(): Promise<void> {
  if (!storedKey()) {
    showAuth();
    return;
  }
  const generation = ++state.generation;
  const current = () => generation === state.generation;
  $('auth').hidden = true;
  $('controls').hidden = false;
  setPageState('loading');
  if (!document.body.dataset.loadedAt) setText('status', 'Loading usage…');
  try {
    state.identity ??= await identify();
    if (!current()) return;
    const identity = state.identity;
    $('user-lookup').hidden = identity.role === 'user';
    if (identity.role === 'user') await showUser(identity.userId, current);
    else if (state.user) await showUser(state.user, current);
    else if (identity.role === 'admin') await showSystem(current);
    else {
      $('system-view').hidden = true;
      $('user-view').hidden = true;
      setText('view-label', 'Service key');
      setText('status', 'A service key acts for any user: enter a user id to open their usage.');
      setPageState('ready');
      return;
    }
    if (current()) markReady();
  } catch (error) {
    if (current()) showFailure(error);
  }
}

// --- system view (admin) -------------------------------------------------------------------------

interface CacheLayer {
  lookups: number;
  hits: number;
  hitRate: number;
  entries?: number;
}

interface SearchCacheStats {
  searches: number;
  tokenFreeSearches: number;
  hitRate: number;
  session: CacheLayer;
  persistent: CacheLayer & { entries: number };
  results: CacheLayer;
}

async function showSystem(current: () => boolean): Promise<void> {
  const [overview, searchCache] = await Promise.all([
    api<UsageOverview>(`/api/usage?${query({ period: state.period })}`),
    // A failure here must not blank the whole view: the table says the figures are unavailable.
    api<SearchCacheStats>('/api/v1/search/cache/stats').catch(() => null),
  ]);
  if (!current()) return;
  renderSearchCache(searchCache);
  state.currency = { code: overview.currency, rate: overview.currencyRate };
  setText('view-label', 'System view · admin key');
  $('user-view').hidden = true;
  $('system-view').hidden = false;
  renderSystem(overview);
}

function money(usd: number, display?: number): { main: string; sub: string } {
  const currency = state.currency;
  const main = formatMoney(usd, 'USD');
  if (!currency || currency.code === 'USD') return { main, sub: 'USD' };
  return { main, sub: `${formatMoney(display ?? usd * currency.rate, currency.code)} (${currency.code})` };
}

function renderSystem(overview: UsageOverview): void {
  const { summary } = overview;
  const range = overview.from ? `${overview.from} to ${overview.to}` : `everything up to ${overview.to}`;
  setText('system-range', `Usage for ${PERIOD_LABELS[overview.period]}: ${range} (${overview.timezone}).`);
  setText('card-tokens', formatTokens(summary.totalTokens));
  setText('card-tokens-sub', `${formatInteger(summary.totalTokens)} tokens · in ${formatTokens(summary.inputTokens)} / out ${formatTokens(summary.outputTokens)}`);
  setText('card-requests', formatInteger(summary.requestCount));
  setText('card-requests-sub', summary.requestCount === 0 ? 'no requests' : `${formatPercent(summary.successRate)} succeeded`);
  setText('card-users', formatInteger(summary.activeUsers));
  setText('card-users-sub', `with usage in ${PERIOD_LABELS[overview.period]}`);
  const cost = money(summary.costUsd, summary.cost);
  setText('card-cost', cost.main);
  setText('card-cost-sub', cost.sub);

  renderTrend(overview.dailyTrend);
  renderTiers(overview.byTier);
  renderProviders(overview.providers);

  fillTable(
    'table-tools',
    overview.toolUsage.map((tool) => [
      breakable(tool.toolName),
      formatInteger(tool.callCount),
      formatPercent(tool.successRate),
      formatInteger(tool.failureCount),
      formatDuration(tool.avgExecutionTimeMs),
    ]),
    'No tool calls in this period.',
  );
  fillTable(
    'table-users',
    overview.topUsers.map((user) => [
      link(hashFor({ user: user.userId }), user.userId),
      formatInteger(user.requestCount),
      formatTokens(user.totalTokens),
      money(user.costUsd, user.cost).main,
    ]),
    'No user usage in this period.',
  );
  const dimensionRow = (name: string, row: DimensionFigures): Cell[] => [
    breakable(name),
    formatInteger(row.requestCount),
    formatTokens(row.totalTokens),
    formatMoney(row.costUsd, 'USD'),
    formatDuration(row.avgLatencyMs),
    formatInteger(row.failureCount),
  ];
  fillTable('table-operations', overview.operations.map((row) => dimensionRow(row.operation, row)), 'No operations in this period.');
  fillTable('table-models', overview.models.map((row) => dimensionRow(row.model, row)), 'No models used in this period.');
  fillTable(
    'table-unpriced',
    (overview.unpricedModels ?? []).map((row) => [breakable(row.model), formatInteger(row.calls), formatTokens(row.totalTokens), row.lastSeenAt.slice(0, 16).replace('T', ' ')]),
    'Every call in this period was priced.',
    [0, 3],
  );
}

function renderSearchCache(stats: SearchCacheStats | null): void {
  const row = (layer: string, figures: CacheLayer): Cell[] => [
    layer,
    formatInteger(figures.lookups),
    formatInteger(figures.hits),
    figures.lookups === 0 ? '—' : formatPercent(figures.hitRate),
    figures.entries === undefined ? '—' : formatInteger(figures.entries),
  ];
  fillTable(
    'table-search-cache',
    stats
      ? [
          row('All searches (no embedding tokens)', { lookups: stats.searches, hits: stats.tokenFreeSearches, hitRate: stats.hitRate }),
          row('Session', stats.session),
          row('Persistent', stats.persistent),
          row('Results', stats.results),
        ]
      : [],
    stats ? 'No searches yet.' : 'Search cache statistics are unavailable.',
  );
}

function baseOptions(): ChartConfiguration['options'] {
  return { responsive: true, maintainAspectRatio: false, animation: false };
}

/** The smallest of 1, 2, 5 or 10 times a power of ten that is at least value: a round axis maximum. */
function niceCeiling(value: number): number {
  const power = 10 ** Math.floor(Math.log10(value));
  return [1, 2, 5, 10].map((step) => step * power).find((candidate) => candidate >= value) ?? 10 * power;
}

function renderTrend(trend: UsageOverview['dailyTrend']): void {
  const empty = trend.every((day) => day.requestCount === 0);
  setChartEmpty('chart-trend', empty);
  if (empty) return;
  // Tokens per request is often near constant, so two lines on axes scaled alike coincide and
  // hide one another. Requests are bars on their own axis, scaled to fill the lower half.
  const mostRequests = Math.max(1, ...trend.map((day) => day.requestCount));
  drawChart('chart-trend', {
    type: 'line',
    data: {
      labels: trend.map((day) => day.date.slice(5)),
      datasets: [
        { label: 'Tokens', data: trend.map((day) => day.totalTokens), yAxisID: 'tokens', order: 0, borderColor: PALETTE[0], backgroundColor: PALETTE[0], pointStyle: 'circle', pointRadius: 3, borderWidth: 2, cubicInterpolationMode: 'monotone' },
        { type: 'bar', label: 'Requests', data: trend.map((day) => day.requestCount), yAxisID: 'requests', order: 1, borderColor: PALETTE[1], backgroundColor: `${PALETTE[1]}59`, pointStyle: 'rect', borderWidth: 1, maxBarThickness: 18 },
      ],
    },
    options: {
      ...baseOptions(),
      interaction: { mode: 'index', intersect: false },
      scales: {
        x: { grid: { color: GRID }, ticks: { maxRotation: 0, autoSkipPadding: 12 } },
        tokens: { position: 'left', beginAtZero: true, grid: { color: GRID }, title: { display: true, text: 'Tokens' }, ticks: { callback: (value) => formatTokens(Number(value)) } },
        requests: { position: 'right', beginAtZero: true, max: niceCeiling(mostRequests * 2), grid: { drawOnChartArea: false }, title: { display: true, text: 'Requests' }, ticks: { precision: 0 } },
      },
      plugins: {
        legend: { labels: { usePointStyle: true } },
        tooltip: {
          callbacks: {
            label: (item) => `${item.dataset.label}: ${item.datasetIndex === 0 ? formatTokens(item.parsed.y ?? 0) : formatInteger(item.parsed.y ?? 0)}`,
          },
        },
      },
    },
  });
}

function renderTiers(tiers: UsageOverview['byTier']): void {
  const total = tiers.reduce((sum, tier) => sum + tier.totalTokens, 0);
  fillTable(
    'table-tiers',
    tiers.map((tier, index) => [swatch(PALETTE[index % PALETTE.length], tier.tier), formatTokens(tier.totalTokens), share(tier.totalTokens, total), formatInteger(tier.requestCount)]),
    'No usage in this period.',
  );
  setChartEmpty('chart-tiers', total === 0);
  if (total === 0) return;
  drawChart('chart-tiers', {
    type: 'doughnut',
    data: {
      labels: tiers.map((tier) => `${tier.tier}: ${formatTokens(tier.totalTokens)} (${share(tier.totalTokens, total)})`),
      datasets: [{ data: tiers.map((tier) => tier.totalTokens), backgroundColor: tiers.map((_, index) => PALETTE[index % PALETTE.length]), borderColor: '#ffffff', borderWidth: 2 }],
    },
    options: { ...baseOptions(), plugins: { legend: { position: 'right', labels: { boxWidth: 14 } } } },
  });
}

function renderProviders(providers: UsageOverview['providers']): void {
  fillTable(
    'table-providers',
    providers.map((row) => [row.provider, formatTokens(row.totalTokens), formatInteger(row.requestCount), formatInteger(row.failureCount)]),
    'No usage in this period.',
  );
  const empty = providers.length === 0;
  setChartEmpty('chart-providers', empty);
  if (empty) return;
  drawChart('chart-providers', {
    type: 'bar',
    data: {
      labels: providers.map((row) => row.provider),
      datasets: [{ label: 'Tokens', data: providers.map((row) => row.totalTokens), backgroundColor: PALETTE[0], borderColor: PALETTE[0], maxBarThickness: 36 }],
    },
    options: {
      ...baseOptions(),
      indexAxis: 'y',
      scales: {
        x: { beginAtZero: true, grid: { color: GRID }, ticks: { callback: (value) => formatTokens(Number(value)) } },
        y: { grid: { display: false } },
      },
      plugins: {
        legend: { display: false },
        tooltip: {
          callbacks: {
            label: (item) => {
              const row = providers[item.dataIndex];
              return `${formatTokens(row.totalTokens)} tokens, ${formatInteger(row.requestCount)} requests`;
            },
          },
        },
      },
    },
  });
}

// --- user view --------------------------------------------------------------------------------

/** Calendar days of a period ending at `today` (YYYY-MM-DD in the service's time zone). */
function periodDays(period: Period, today: string): number {
  const [year, month, day] = today.split('-').map(Number);
  switch (period) {
    case 'today':
      return 1;
    case 'week':
      return 7;
    case 'month':
      return day;
    case 'year':
      return Math.round((Date.UTC(year, month - 1, day) - Date.UTC(year, 0, 1)) / 86_400_000) + 1;
    case 'all':
      return MAX_DAYS;
  }
}

async function showUser(userId: string, current: () => boolean): Promise<void> {
  const user = encodeURIComponent(userId);
  const needsToday = state.period === 'month' || state.period === 'year';
  const [probe, ledger, rolling] = await Promise.all([
    // Month and year are calendar periods in the service's time zone: learn its today first.
    needsToday ? api<UserUsage>(`/api/v1/search/token-usage?${query({ user: userId, days: 1 })}`) : undefined,
    api<LedgerUsage>(`/user/${user}/token-usage`).catch((error: unknown) => {
      if (error instanceof ApiError && error.status === 404) return null;
      throw error;
    }),
    api<WindowUsage>(`/api/v1/tokens/usage/${user}`),
  ]);
  const days = probe ? periodDays(state.period, probe.to) : periodDays(state.period, '');
  const usage = await api<UserUsage>(`/api/v1/search/token-usage?${query({ user: userId, days })}`);
  if (!current()) return;
  const admin = state.identity?.role === 'admin';
  setText('view-label', state.identity?.role === 'user' ? `Your usage · user key for ${userId}` : `User ${userId} · ${state.identity?.role ?? ''} key`);
  $('system-view').hidden = true;
  $('user-view').hidden = false;
  $('back-link').hidden = !admin;
  ($('back-link').querySelector('a') as HTMLAnchorElement).href = hashFor({ user: null });
  renderUser(userId, usage, ledger, rolling);
}

function renderUser(userId: string, usage: UserUsage, ledger: LedgerUsage | null, rolling: WindowUsage): void {
  const title = $('user-title');
  title.textContent = `User ${userId}`;
  const badge = document.createElement('span');
  badge.className = 'badge';
  badge.textContent = `${rolling.tier} tier`;
  title.append(' ', badge);
  const label = state.period === 'all' ? `the last ${MAX_DAYS} days` : PERIOD_LABELS[state.period];
  setText('user-range', `Usage for ${label}: ${usage.from} to ${usage.to} (${usage.timezone}).`);

  const { totals } = usage;
  setText('user-card-tokens', formatTokens(totals.total_tokens));
  setText('user-card-tokens-sub', `${formatInteger(totals.total_tokens)} tokens · prompt ${formatTokens(totals.prompt_tokens)} / completion ${formatTokens(totals.completion_tokens)} / embedding ${formatTokens(totals.embedding_tokens)}`);
  setText('user-card-requests', formatInteger(totals.operations));
  setText('user-card-requests-sub', totals.operations === 0 ? 'no requests' : `${formatInteger(totals.failed_operations)} failed`);
  const cost = money(totals.cost_estimate);
  setText('user-card-cost', cost.main);
  setText('user-card-cost-sub', cost.sub);
  setText('user-card-all-time', ledger ? formatTokens(ledger.totalTokens) : '0');
  setText(
    'user-card-all-time-sub',
    ledger ? `${formatInteger(ledger.requestCount)} requests · ${formatMoney(ledger.costUsd, 'USD')} since ${ledger.firstRequestAt?.slice(0, 10) ?? '—'}` : 'No usage recorded yet',
  );

  renderWindow(rolling);
  renderUserDaily(usage.by_day);

  const statsRows = (map: Record<string, UsageStats>): Cell[][] =>
    Object.entries(map).map(([name, row]) => [
      breakable(name),
      formatInteger(row.operations),
      formatTokens(row.total_tokens),
      formatMoney(row.cost_estimate, 'USD'),
      formatDuration(row.avg_response_time * 1000),
      formatInteger(row.failed_operations),
    ]);
  fillTable('table-user-operations', statsRows(usage.by_operation), 'No operations in this period.');
  fillTable('table-user-models', statsRows(usage.by_model), 'No models used in this period.');
  fillTable(
    'table-sessions',
    newestFirst(ledger?.recentSessions ?? [])
      .slice(0, 20)
      .map((session) => [
        dateTime(session.timestamp),
        breakable(session.operationType),
        breakable(session.model),
        formatInteger(session.totalTokens),
        formatMoney(session.costUsd, 'USD'),
        formatDuration(session.latencyMs),
        session.success ? { text: 'ok', className: 'result-ok' } : { text: 'failed', className: 'result-failed', title: session.errorMessage },
      ]),
    'No sessions recorded yet.',
    [0, 1, 2, 6],
  );
}

/** Sessions by time, newest first (the ledger lists them in the order it wrote them). */
function newestFirst(sessions: RecentSession[]): RecentSession[] {
  return [...sessions].sort((a, b) => b.timestamp.localeCompare(a.timestamp));
}

function renderWindow(rolling: WindowUsage): void {
  const limit = rolling.limits.rolling24hTokens;
  const used = rolling.current_usage;
  setText('window-used', `${formatTokens(used)} tokens`);
  setText('window-limit', limit === null ? 'no limit' : `of ${formatTokens(limit)} (${share(used, limit)})`);
  const fill = $('window-meter');
  const ratio = limit ? Math.min(1, used / limit) : 0;
  fill.style.width = `${(ratio * 100).toFixed(1)}%`;
  fill.classList.toggle('high', ratio >= 0.9);
  // An empty window reports when one opened now would reset; it is not open yet.
  const reset = rolling.reset_at && rolling.current_usage > 0 ? `Window resets at ${utcTime(rolling.reset_at)} UTC` : `No ${rolling.window_hours}-hour window open`;
  setText('window-reset', rolling.tracking_enabled ? `${reset}.` : 'Window tracking is unavailable right now (Redis is down); limits are not being counted.');
  const remaining = rolling.remaining;
  const tokens = (value: number | null) => (value === null ? 'unlimited' : formatInteger(value));
  const usd = (value: number | null) => (value === null ? 'unlimited' : formatMoney(value, 'USD'));
  const unknown = 'unknown';
  fillTable(
    'table-limits',
    [
      [`Rolling ${rolling.window_hours} h tokens`, tokens(rolling.limits.rolling24hTokens), remaining ? tokens(remaining.rolling24hTokens) : unknown],
      ['Tokens today', tokens(rolling.limits.dailyTokens), remaining ? tokens(remaining.dailyTokens) : unknown],
      ['Cost this month', usd(rolling.limits.monthlyCostUsd), remaining ? usd(remaining.monthlyCostUsd) : unknown],
    ],
    'No limits.',
  );
}

function renderUserDaily(days: UserUsage['by_day']): void {
  const empty = days.every((day) => day.operations === 0);
  setChartEmpty('chart-user-daily', empty);
  if (empty) return;
  drawChart('chart-user-daily', {
    type: 'bar',
    data: {
      labels: days.map((day) => day.date.slice(5)),
      datasets: [{ label: 'Tokens', data: days.map((day) => day.total_tokens), backgroundColor: PALETTE[0], borderColor: PALETTE[0], maxBarThickness: 28 }],
    },
    options: {
      ...baseOptions(),
      scales: {
        x: { grid: { display: false }, ticks: { maxRotation: 0, autoSkipPadding: 12 } },
        y: { beginAtZero: true, grid: { color: GRID }, title: { display: true, text: 'Tokens' }, ticks: { callback: (value) => formatTokens(Number(value)) } },
      },
      plugins: {
        legend: { display: false },
        tooltip: {
          callbacks: {
            title: (items) => days[items[0].dataIndex].date,
            label: (item) => {
              const day = days[item.dataIndex];
              return `${formatTokens(day.total_tokens)} tokens, ${formatInteger(day.operations)} requests, ${formatMoney(day.cost_estimate, 'USD')}`;
            },
          },
        },
      },
    },
  });
}

// --- start ------------------------------------------------------------------------------------

function start(): void {
  if (typeof Chart !== 'undefined') {
    Chart.defaults.color = CHART_TEXT;
    Chart.defaults.font.family = getComputedStyle(document.body).fontFamily;
    Chart.defaults.font.size = 13;
  }
  setText('auto-refresh-label', `Auto-refresh (${formatDuration(state.refreshMs)})`);
  readHash();

  $('auth-form').addEventListener('submit', (event) => {
    event.preventDefault();
    const input = $('api-key') as HTMLInputElement;
    const key = input.value.trim();
    if (!key) return;
    sessionStorage.setItem(KEY_STORAGE, key);
    input.value = '';
    state.identity = null;
    showError();
    void refresh();
  });
  $('user-form').addEventListener('submit', (event) => {
    event.preventDefault();
    const input = $('user-id') as HTMLInputElement;
    if (input.value.trim()) navigate({ user: input.value.trim() });
  });
  for (const button of document.querySelectorAll<HTMLButtonElement>('[data-period]')) {
    button.addEventListener('click', () => navigate({ period: button.dataset.period as Period }));
  }
  $('auto-refresh').addEventListener('change', (event) => setAutoRefresh((event.target as HTMLInputElement).checked));
  $('refresh-now').addEventListener('click', () => void refresh());
  $('sign-out').addEventListener('click', () => {
    sessionStorage.removeItem(KEY_STORAGE);
    state.identity = null;
    state.currency = null;
    delete document.body.dataset.loadedAt;
    for (const chart of charts.values()) chart.destroy();
    charts.clear();
    showAuth();
  });
  window.addEventListener('hashchange', () => {
    readHash();
    void refresh();
  });

  if (!storedKey()) {
    showAuth();
    return;
  }
  setAutoRefresh(sessionStorage.getItem(AUTO_REFRESH_STORAGE) === 'on');
  void refresh();
}

start();
