import Table from 'cli-table3';
import type {
  DailyUsageStatsDto,
  SystemTokenUsageResponseDto,
  TokenUsageResponseDto,
  UsageStatsDto,
  UserUsageStatsDto,
} from '../analytics/dto/search-token-usage.dto';
import { formatDuration, formatInteger, formatMoney, formatTokens } from '../dashboard/web/usage-format';

export type UsageReport = TokenUsageResponseDto | SystemTokenUsageResponseDto;

const SPARK = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
const BAR_WIDTH = 24;
const SPARKLINE_WIDTH = 60;
/** Longer ranges list only the days with usage. */
const EVERY_DAY_UP_TO = 31;

export function isSystemReport(report: UsageReport): report is SystemTokenUsageResponseDto {
  return 'by_user' in report;
}

/** One character per value (per bucket of consecutive values past `width`); `·` marks zero. */
export function sparkline(values: number[], width = SPARKLINE_WIDTH): string {
  const size = Math.max(1, Math.ceil(values.length / width));
  const buckets: number[] = [];
  for (let index = 0; index < values.length; index += size) buckets.push(values.slice(index, index + size).reduce((sum, value) => sum + value, 0));
  const max = Math.max(0, ...buckets);
  return buckets.map((value) => (value <= 0 || max === 0 ? '·' : SPARK[Math.max(0, Math.ceil((value / max) * SPARK.length) - 1)])).join('');
}

/** A horizontal bar proportional to value / max; any usage shows at least one block. */
export function bar(value: number, max: number, width = BAR_WIDTH): string {
  if (value <= 0 || max <= 0) return '';
  return '█'.repeat(Math.max(1, Math.round((value / max) * width)));
}

function table(head: string[], numericFrom = 1): Table.Table {
  return new Table({
    head,
    // No colours: the output is read in terminals, logs and pipes alike.
    style: { head: [], border: [], compact: true },
    colAligns: head.map((_, index) => (index >= numericFrom ? 'right' : 'left')),
  });
}

function statsTable(title: string, rows: Record<string, UsageStatsDto>): string {
  const entries = Object.entries(rows);
  if (entries.length === 0) return `${title}\n  (none)\n`;
  const output = table([title.replace(/^By /, '').replace(/^./, (c) => c.toUpperCase()), 'Ops', 'Failed', 'Tokens', 'Cost (USD)', 'Avg time']);
  for (const [name, stats] of entries) {
    output.push([name, formatInteger(stats.operations), formatInteger(stats.failed_operations), formatTokens(stats.total_tokens), formatMoney(stats.cost_estimate, 'USD'), formatDuration(stats.avg_response_time * 1000)]);
  }
  return `${title}\n${output.toString()}\n`;
}

function dayTable(days: DailyUsageStatsDto[]): string {
  const max = Math.max(0, ...days.map((day) => day.total_tokens));
  const shown = days.length <= EVERY_DAY_UP_TO ? days : days.filter((day) => day.operations > 0);
  const output = table(['Date', 'Ops', 'Tokens', 'Cost (USD)', 'Daily tokens'], 1);
  for (const day of shown) {
    output.push([day.date, formatInteger(day.operations), formatTokens(day.total_tokens), formatMoney(day.cost_estimate, 'USD'), { content: bar(day.total_tokens, max), hAlign: 'left' }]);
  }
  const note = shown.length < days.length ? ` (days without usage left out)` : '';
  const body = shown.length === 0 ? '  (no usage)\n' : `${output.toString()}\n`;
  return `By day${note}\n${body}`;
}

function totalsTable(report: UsageReport): string {
  const { totals } = report;
  const output = new Table({ style: { head: [], border: [], compact: true } });
  output.push(
    { Operations: `${formatInteger(totals.operations)} (${formatInteger(totals.failed_operations)} failed)` },
    { Tokens: `${formatTokens(totals.total_tokens)} (${formatInteger(totals.total_tokens)}: prompt ${formatInteger(totals.prompt_tokens)}, completion ${formatInteger(totals.completion_tokens)}, embedding ${formatInteger(totals.embedding_tokens)})` },
    { 'Estimated cost': formatMoney(totals.cost_estimate, 'USD') },
    { 'Avg response': formatDuration(totals.avg_response_time * 1000) },
  );
  if (isSystemReport(report)) output.push({ 'Active users': formatInteger(report.unique_users) });
  return `Totals\n${output.toString()}\n`;
}

function usersTable(users: UserUsageStatsDto[]): string {
  if (users.length === 0) return 'Top users\n  (none)\n';
  const output = table(['User', 'Ops', 'Tokens', 'Cost (USD)']);
  for (const user of users) output.push([user.user_id, formatInteger(user.operations), formatTokens(user.total_tokens), formatMoney(user.cost_estimate, 'USD')]);
  return `Top users (highest cost first)\n${output.toString()}\n`;
}

/** The table format: a header, totals, by operation, by model, by day with a sparkline, and top users. */
export function renderUsageReport(report: UsageReport): string {
  const who = isSystemReport(report) ? (report.filters.user ? `user ${report.filters.user}` : 'all users') : `user ${report.user_id}`;
  const filters = [report.filters.operation && `operation ${report.filters.operation}`, report.filters.model && `model ${report.filters.model}`].filter(Boolean);
  const lines = [
    `Token usage, ${who}: last ${report.days} day${report.days === 1 ? '' : 's'} (${report.from} to ${report.to}, ${report.timezone})`,
    ...(filters.length ? [`Filtered by ${filters.join(', ')}`] : []),
    `Daily tokens  ${sparkline(report.by_day.map((day) => day.total_tokens))}  (${report.from} to ${report.to})`,
    '',
    totalsTable(report),
    statsTable('By operation type', report.by_operation),
    statsTable('By model', report.by_model),
    dayTable(report.by_day),
  ];
  if (isSystemReport(report) && !report.filters.user) lines.push(usersTable(report.by_user));
  return `${lines.join('\n').trimEnd()}\n`;
}
