import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';

export const FORMATS = ['table', 'json', 'csv'] as const;
export type OutputFormat = (typeof FORMATS)[number];
export const MAX_DAYS = 366;
export const DEFAULT_URL = 'http://localhost:3000';

/** Exit codes, documented in --help. */
export const EXIT = { ok: 0, failed: 1, usage: 2, unreachable: 3, auth: 4 } as const;

export interface UsageCliOptions {
  days: number;
  user?: string;
  operation?: string;
  model?: string;
  format: OutputFormat;
  url: URL;
  apiKey: string;
}

/** A failure with the message to print and the exit code to leave with. */
export class CliError extends Error {
  constructor(
    readonly exitCode: number,
    message: string,
    /** The HTTP status behind it, when the service answered. */
    readonly status?: number,
  ) {
    super(message);
  }
}

export interface CliOutput {
  writeOut(text: string): void;
  writeErr(text: string): void;
}

const HELP_FOOTER = `
Environment:
  TOKEN_LEDGER_URL       the service's base URL (same as --url)
  TOKEN_LEDGER_API_KEY   the API key (same as --api-key; preferred: arguments are visible in ps)

Keys:
  An admin key sees every user (add --user to look at one); a user key sees its own user only;
  a service key must name a user with --user.

Output:
  table  totals, then tables by operation type, by model and by day, with a sparkline of
         daily tokens (and the top users, for all users)
  json   the API's response (GET /api/v1/search/token-usage[/all]) as it is
  csv    every usage event of the period (GET /api/v1/usage-events, Accept: text/csv), for billing

Exit codes:
  0  success
  1  the service failed (5xx) or answered something unexpected
  2  bad arguments, or options the service rejected
  3  the service could not be reached
  4  the API key was rejected (401) or may not read this usage (403)

Re-pricing after a price catalogue fix:
  token-usage reprice --from <date> --to <date> [--user <id>] [--model <name>] [--apply]
  (run token-usage reprice --help)

Examples:
  npm run usage -- --days 30
  TOKEN_LEDGER_API_KEY=tl_admin_... npx token-usage --user user123 --operation rag_answer
  npx token-usage --days 31 --format csv > usage.csv
`;

function parseDays(value: string): number {
  if (!/^\d+$/.test(value) || Number(value) < 1 || Number(value) > MAX_DAYS) {
    throw new InvalidArgumentError(`must be a whole number from 1 to ${MAX_DAYS}`);
  }
  return Number(value);
}

export function parseUrl(value: string): URL {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new InvalidArgumentError('must be an http(s) URL such as http://localhost:3000');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new InvalidArgumentError('must be an http(s) URL such as http://localhost:3000');
  return url;
}

function nonEmpty(name: string): (value: string) => string {
  return (value) => {
    if (value.trim() === '') throw new InvalidArgumentError(`${name} must not be empty`);
    return value.trim();
  };
}

function program(output: CliOutput): Command {
  const command = new Command('token-usage')
    .description("Token usage and cost from a running token-ledger service: totals, by operation type, by model and by day; CSV export of usage events.")
    .addOption(new Option('--days <n>', `calendar days ending today, in the service's USAGE_TIMEZONE (1-${MAX_DAYS})`).default(7).argParser(parseDays))
    .addOption(new Option('--user <id>', 'one user (default: every user for an admin key, the own user for a user key)').argParser(nonEmpty('user')))
    .addOption(new Option('--operation <type>', 'only this operation type, e.g. rag_answer, embedding, chat_info').argParser(nonEmpty('operation')))
    .addOption(new Option('--model <name>', 'only this model, e.g. openai/gpt-4o-mini').argParser(nonEmpty('model')))
    .addOption(new Option('--format <format>', 'output format').choices(FORMATS).default('table'));
  return withServiceOptions(command, output, { apiKeyHelp: 'API key', helpFooter: HELP_FOOTER });
}

/** The options and behaviour every token-usage command shares: where the service is, the key, help and errors. */
export function withServiceOptions(command: Command, output: CliOutput, texts: { apiKeyHelp: string; helpFooter: string }): Command {
  return command
    .addOption(new Option('--url <url>', "the service's base URL").env('TOKEN_LEDGER_URL').default(DEFAULT_URL).argParser(parseUrl))
    .addOption(new Option('--api-key <key>', texts.apiKeyHelp).env('TOKEN_LEDGER_API_KEY'))
    .helpOption('-h, --help', 'show this help')
    .addHelpText('after', texts.helpFooter)
    .showHelpAfterError('(run with --help for every option)')
    .allowExcessArguments(false)
    .exitOverride()
    .configureOutput({ writeOut: output.writeOut, writeErr: output.writeErr });
}

/**
 * Parses the command line (without the node and script arguments). Returns the options, or
 * the exit code when commander already printed help (0) or an error (2).
 */
export function parseUsageCliOptions(argv: string[], output: CliOutput): UsageCliOptions | number {
  const command = program(output);
  try {
    command.parse(argv, { from: 'user' });
  } catch (error) {
    if (error instanceof CommanderError) return error.code === 'commander.helpDisplayed' || error.code === 'commander.version' ? EXIT.ok : EXIT.usage;
    throw error;
  }
  const options = command.opts<{ days: number; user?: string; operation?: string; model?: string; format: OutputFormat; url: URL | string; apiKey?: string }>();
  // A default or an environment value skips argParser in some paths: validate once more.
  const url = typeof options.url === 'string' ? parseUrlOrFail(options.url, output) : options.url;
  if (url === undefined) return EXIT.usage;
  const apiKey = options.apiKey?.trim();
  if (!apiKey) {
    output.writeErr('error: no API key: pass --api-key <key> or set TOKEN_LEDGER_API_KEY\n(run with --help for every option)\n');
    return EXIT.usage;
  }
  return { days: options.days, user: options.user, operation: options.operation, model: options.model, format: options.format, url, apiKey };
}

function parseUrlOrFail(value: string, output: CliOutput): URL | undefined {
  try {
    return parseUrl(value);
  } catch (error) {
    output.writeErr(`error: TOKEN_LEDGER_URL ${(error as Error).message} (got ${JSON.stringify(value)})\n`);
    return undefined;
  }
}
