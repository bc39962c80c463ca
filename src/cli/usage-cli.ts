#!/usr/bin/env node
import type { SystemTokenUsageResponseDto, TokenUsageResponseDto } from '../analytics/dto/search-token-usage.dto';
import { UsageApiClient } from './usage-api.client';
import { CliError, CliOutput, EXIT, parseUsageCliOptions, UsageCliOptions } from './usage-cli-options';
import { renderUsageReport, UsageReport } from './usage-report';
import { repriceMain } from './reprice-cli';

const SEARCH = '/api/v1/search/token-usage';
const EVENTS = '/api/v1/usage-events';
const EVENTS_PAGE = 5000;

/**
 * A reader that stops early (`token-usage --format csv | head -3`) closes the pipe: the next
 * write fails with EPIPE, which is that reader's choice, not an error of this command.
 */
function exitQuietlyWhenStdoutCloses(): void {
  if (process.stdout.listeners('error').includes(onStdoutError)) return;
  process.stdout.on('error', onStdoutError);
}

function onStdoutError(error: NodeJS.ErrnoException): void {
  if (error.code !== 'EPIPE') throw error;
  process.exit(EXIT.ok);
}

const processOutput: CliOutput = {
  writeOut: (text) => {
    exitQuietlyWhenStdoutCloses();
    return process.stdout.write(text);
  },
  writeErr: (text) => process.stderr.write(text),
};

/**
 * The usage of the period: one user's (--user, or a user key's own) or, for an admin key,
 * everyone's with a per-user breakdown. A key that may not read everyone's gets its own.
 */
async function fetchReport(client: UsageApiClient, options: UsageCliOptions): Promise<UsageReport> {
  const filters = { days: options.days, operation: options.operation, model: options.model };
  if (options.user) return client.json<TokenUsageResponseDto>(SEARCH, { ...filters, user: options.user });
  try {
    return await client.json<SystemTokenUsageResponseDto>(`${SEARCH}/all`, filters);
  } catch (error) {
    if (!(error instanceof CliError) || error.status !== 403) throw error;
  }
  try {
    return await client.json<TokenUsageResponseDto>(SEARCH, filters);
  } catch (error) {
    if (error instanceof CliError && error.status === 400) throw new CliError(EXIT.usage, `${error.message} (pass --user <id>)`, 400);
    throw error;
  }
}

/** Local midnight, in `timeZone`, of the calendar day `day` (YYYY-MM-DD). */
export function startOfDay(day: string, timeZone: string): Date {
  const wall = Date.parse(`${day}T00:00:00Z`);
  const format = new Intl.DateTimeFormat('en-US', { timeZone, hourCycle: 'h23', year: 'numeric', month: 'numeric', day: 'numeric', hour: 'numeric', minute: 'numeric', second: 'numeric' });
  const offsetAt = (instant: number) => {
    const parts = Object.fromEntries(format.formatToParts(new Date(instant)).map((part) => [part.type, Number(part.value)]));
    return Date.UTC(parts.year, parts.month - 1, parts.day, parts.hour, parts.minute, parts.second) - Math.floor(instant / 1000) * 1000;
  };
  // Shift by the zone's offset, then once more in case that crossed a DST change.
  return new Date(wall - offsetAt(wall - offsetAt(wall)));
}

/** Every usage event of the report's period as CSV, one header, following the API's pages. */
export async function writeEventsCsv(client: UsageApiClient, options: UsageCliOptions, report: UsageReport, output: CliOutput): Promise<void> {
  const user = options.user ?? ('user_id' in report ? report.user_id : undefined);
  const query = { user, operation: options.operation, model: options.model, from: startOfDay(report.from, report.timezone).toISOString(), limit: EVENTS_PAGE };
  let cursor: string | undefined;
  let first = true;
  do {
    const page = await client.csv(EVENTS, { ...query, cursor });
    output.writeOut(first ? page.text : page.text.slice(page.text.indexOf('\n') + 1));
    first = false;
    cursor = page.nextCursor ?? undefined;
  } while (cursor);
}

/** Runs the CLI with the arguments after `node script`; resolves to the exit code. */
export async function main(argv: string[], output: CliOutput = processOutput): Promise<number> {
  if (argv[0] === 'reprice') return repriceMain(argv.slice(1), output);
  const options = parseUsageCliOptions(argv, output);
  if (typeof options === 'number') return options;
  const client = new UsageApiClient(options.url, options.apiKey);
  try {
    const report = await fetchReport(client, options);
    if (options.format === 'json') output.writeOut(`${JSON.stringify(report, null, 2)}\n`);
    else if (options.format === 'csv') await writeEventsCsv(client, options, report, output);
    else output.writeOut(renderUsageReport(report));
    return EXIT.ok;
  } catch (error) {
    if (!(error instanceof CliError)) throw error;
    output.writeErr(`token-usage: ${error.message}\n`);
    return error.exitCode;
  }
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => (process.exitCode = code),
    (error: unknown) => {
      process.stderr.write(`token-usage: unexpected error: ${(error as Error).stack ?? String(error)}\n`);
      process.exitCode = EXIT.failed;
    },
  );
}
