import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import type { RepriceReportDto } from '../repricing/dto/reprice.dto';
import { UsageApiClient } from './usage-api.client';
import { CliError, CliOutput, EXIT, parseUrl, withServiceOptions } from './usage-cli-options';

export const REPRICE_PATH = '/api/usage/reprice';

export interface RepriceCliOptions {
  from: string;
  to: string;
  user?: string;
  model?: string;
  apply: boolean;
  json: boolean;
  url: URL;
  apiKey: string;
}

const HELP_FOOTER = `
Re-prices the usage events of a period with the service's current price lists (after a price
catalogue fix) and moves the user ledgers and daily/monthly figures by the same amounts.
Provider-reported costs never change. Without --apply it is a dry run: it prints the
before/after difference per user and changes nothing. Running it again changes nothing.

Dates are ISO 8601 (2026-11-01 or 2026-11-01T00:00:00Z); --to is exclusive. Needs an admin key.

Examples:
  npx token-usage reprice --from 2026-11-01 --to 2026-12-01
  npx token-usage reprice --from 2026-11-01 --to 2026-12-01 --model gpt-4o --apply
`;

function parseDate(name: string): (value: string) => string {
  return (value) => {
    if (!/^\d{4}-\d{2}-\d{2}/.test(value) || Number.isNaN(Date.parse(value))) throw new InvalidArgumentError(`${name} must be an ISO 8601 date such as 2026-11-01`);
    return new Date(value).toISOString();
  };
}

function program(output: CliOutput): Command {
  const command = new Command('token-usage reprice')
    .description("Re-price a period's usage after a price catalogue fix (dry run unless --apply).")
    .addOption(new Option('--from <date>', 'start of the period (inclusive)').argParser(parseDate('--from')).makeOptionMandatory())
    .addOption(new Option('--to <date>', 'end of the period (exclusive)').argParser(parseDate('--to')).makeOptionMandatory())
    .addOption(new Option('--user <id>', 'only this user'))
    .addOption(new Option('--model <name>', 'only events of this model, as recorded'))
    .addOption(new Option('--dry-run', 'print the difference without changing anything (the default)'))
    .addOption(new Option('--apply', 'change the records').conflicts('dryRun'))
    .addOption(new Option('--json', "print the service's report as JSON"));
  return withServiceOptions(command, output, { apiKeyHelp: 'API key (an admin key)', helpFooter: HELP_FOOTER });
}

export function parseRepriceOptions(argv: string[], output: CliOutput): RepriceCliOptions | number {
  const command = program(output);
  try {
    command.parse(argv, { from: 'user' });
  } catch (error) {
    if (error instanceof CommanderError) return error.code === 'commander.helpDisplayed' ? EXIT.ok : EXIT.usage;
    throw error;
  }
  const options = command.opts<{ from: string; to: string; user?: string; model?: string; apply?: boolean; json?: boolean; url: URL | string; apiKey?: string }>();
  let url: URL;
  try {
    url = typeof options.url === 'string' ? parseUrl(options.url) : options.url;
  } catch (error) {
    output.writeErr(`error: TOKEN_LEDGER_URL ${(error as Error).message}\n`);
    return EXIT.usage;
  }
  const apiKey = options.apiKey?.trim();
  if (!apiKey) {
    output.writeErr('error: no API key: pass --api-key <key> or set TOKEN_LEDGER_API_KEY\n');
    return EXIT.usage;
  }
  return { from: options.from, to: options.to, user: options.user, model: options.model, apply: options.apply === true, json: options.json === true, url, apiKey };
}

const usd = (micros: number) => {
  const sign = micros < 0 ? '-' : micros > 0 ? '+' : '';
  return `${sign}$${(Math.abs(micros) / 1e6).toFixed(6)}`;
};
const plainUsd = (micros: number) => `$${(micros / 1e6).toFixed(6)}`;

/** The report as a finance person reads it: what changes, per user and per model, to the micro-dollar. */
export function renderRepriceReport(report: RepriceReportDto): string {
  const lines = [
    `${report.dryRun ? 'DRY RUN (nothing changed; add --apply to change it)' : 'Re-priced'}: ${report.from} to ${report.to}, prices from ${report.catalogVersion} and genai-prices`,
    `Events examined ${report.examined}, changed ${report.changed}, unchanged ${report.unchanged}` +
      (report.leftPriced ? `, left priced (no price list knows the model now) ${report.leftPriced}` : '') +
      (report.conflicts ? `, changed by another run first ${report.conflicts}` : '') +
      (report.resumed ? `, interrupted re-pricings completed ${report.resumed}` : ''),
    ...(report.withoutBreakdown
      ? [`Note: ${report.withoutBreakdown} changed event(s) predate cached-token counts on events and are priced as if no input was cached`]
      : []),
    `Total: ${plainUsd(report.total.beforeMicros)} -> ${plainUsd(report.total.afterMicros)} (${usd(report.total.deltaMicros)})`,
  ];
  if (report.users.length > 0) {
    lines.push('', 'By user:');
    const width = Math.max(...report.users.map((user) => (user.userId ?? '(no user)').length));
    for (const user of report.users) {
      lines.push(`  ${(user.userId ?? '(no user)').padEnd(width)}  ${String(user.events).padStart(6)} event(s)  ${plainUsd(user.beforeMicros)} -> ${plainUsd(user.afterMicros)}  ${usd(user.deltaMicros)}`);
    }
  }
  if (report.models.length > 0) {
    lines.push('', 'By model:');
    const width = Math.max(...report.models.map((model) => model.model.length));
    for (const model of report.models) {
      lines.push(`  ${model.model.padEnd(width)}  ${String(model.events).padStart(6)} event(s)  ${plainUsd(model.beforeMicros)} -> ${plainUsd(model.afterMicros)}  ${usd(model.deltaMicros)}`);
    }
  }
  return `${lines.join('\n')}\n`;
}

export async function repriceMain(argv: string[], output: CliOutput): Promise<number> {
  const options = parseRepriceOptions(argv, output);
  if (typeof options === 'number') return options;
  const client = new UsageApiClient(options.url, options.apiKey);
  try {
    const report = await client.post<RepriceReportDto>(REPRICE_PATH, {
      from: options.from,
      to: options.to,
      ...(options.user ? { userId: options.user } : {}),
      ...(options.model ? { model: options.model } : {}),
      dryRun: !options.apply,
    });
    output.writeOut(options.json ? `${JSON.stringify(report, null, 2)}\n` : renderRepriceReport(report));
    return EXIT.ok;
  } catch (error) {
    if (!(error instanceof CliError)) throw error;
    output.writeErr(`token-usage reprice: ${error.message}\n`);
    return error.exitCode;
  }
}
