import { execFile, spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { CSV_COLUMNS } from '../src/analytics/usage-event.mapper';
import { formatInteger, formatMoney, formatTokens } from '../src/dashboard/web/usage-format';
import { expectedTotals, PERIOD_WINDOWS, SeededDashboardApp, SEED_EVENTS, startSeededDashboardApp } from './support/dashboard-seed';

const ROOT = join(__dirname, '..');
const BIN = join(ROOT, 'bin', 'token-usage.js');

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** The real command, as a child process: `token-usage` (package.json bin) or `npm run usage`. */
function run(args: string[], env: Record<string, string> = {}, command: 'bin' | 'npm' = 'bin'): Promise<Run> {
  const [file, argv] = command === 'bin' ? [process.execPath, [BIN, ...args]] : ['npm', ['run', '--silent', 'usage', '--', ...args]];
  // Nothing from the test runner's environment decides the outcome.
  const { TOKEN_LEDGER_URL: _url, TOKEN_LEDGER_API_KEY: _key, ...inherited } = process.env;
  return new Promise((resolve) => {
    execFile(file, argv, { cwd: ROOT, env: { ...inherited, NO_COLOR: '1', ...env }, timeout: 30_000 }, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === 'number' ? error.code : -1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

describe('token-usage CLI (against a running service)', () => {
  let seeded: SeededDashboardApp;
  let env: Record<string, string>;

  beforeAll(async () => {
    seeded = await startSeededDashboardApp();
    env = { TOKEN_LEDGER_URL: seeded.baseUrl, TOKEN_LEDGER_API_KEY: seeded.adminKey };
  });

  afterAll(async () => {
    await seeded?.close();
  });

  it('prints totals, by operation, by model, by day with a sparkline, and top users for an admin key', async () => {
    const { code, stdout, stderr } = await run([], env);
    expect(stderr).toBe('');
    expect(code).toBe(0);
    const week = expectedTotals(PERIOD_WINDOWS.week, seeded.gateway);
    expect(stdout).toContain('Token usage, all users: last 7 days (2030-06-09 to 2030-06-15, UTC)');
    expect(stdout).toMatch(/Daily tokens {2}·▂·█▃▂▇ {2}\(2030-06-09 to 2030-06-15\)/);
    expect(stdout).toContain(`│ Operations     │ ${formatInteger(week.requests)} (2 failed)`);
    expect(stdout).toContain(`│ Tokens         │ ${formatTokens(week.totalTokens)} (${formatInteger(week.totalTokens)}: prompt`);
    expect(stdout).toContain(`│ Estimated cost │ ${formatMoney(week.costMicros / 1e6, 'USD')}`);
    expect(stdout).toContain(`│ Active users   │ ${week.users.size}`);
    expect(stdout).toMatch(/│ code_generation\s+│\s+1 │\s+0 │\s+1K │\s+\$0\.0078 │\s+3 s │/);
    expect(stdout).toMatch(/│ anthropic\/claude-3\.5-sonnet\s+│\s+1 │\s+1 │\s+5K │\s+\$0\.027 │\s+2\.5 s │/);
    expect(stdout).toMatch(/│ 2030-06-10 │\s+1 │\s+1K │\s+\$0\.0078 │ █+\s+│/);
    expect(stdout).toMatch(/│ 2030-06-11 │\s+0 │\s+0 │\s+\$0\.00 │\s+│/);
    expect(stdout).toMatch(/Top users \(highest cost first\)\n.*\n.*User.*\n.*\n│ carol\s+│\s+1 │\s+5K │\s+\$0\.027 │/);
  });

  it("filters by user, operation and model, and widens with --days (flags instead of the environment)", async () => {
    const { code, stdout } = await run(['--days', '30', '--user', 'alice', '--operation', 'rag_answer', '--url', seeded.baseUrl, '--api-key', seeded.adminKey]);
    expect(code).toBe(0);
    expect(stdout).toContain('Token usage, user alice: last 30 days (2030-05-17 to 2030-06-15, UTC)');
    expect(stdout).toContain('Filtered by operation rag_answer');
    expect(stdout).toContain('│ Operations     │ 2 (0 failed)');
    expect(stdout).toContain('│ Tokens         │ 4.8K (4,800: prompt 4,000, completion 800, embedding 0)');
    expect(stdout).not.toContain('chat_intent');
    expect(stdout).not.toContain('Top users');

    const model = await run(['--model', 'openai/gpt-4o', '--format', 'json'], env);
    expect(model.code).toBe(0);
    expect(JSON.parse(model.stdout).totals).toMatchObject({ operations: 2, total_tokens: 3500 });
  });

  it('prints the API response with --format json', async () => {
    const { code, stdout } = await run(['--format', 'json', '--days', '1'], env);
    expect(code).toBe(0);
    const body = JSON.parse(stdout);
    const today = expectedTotals(PERIOD_WINDOWS.today, seeded.gateway);
    expect(body).toMatchObject({ days: 1, from: '2030-06-15', to: '2030-06-15', unique_users: today.users.size });
    expect(body.totals).toMatchObject({ operations: today.requests, total_tokens: today.totalTokens, cost_micros: today.costMicros });
    expect(body.by_user.map((user: { user_id: string }) => user.user_id)).toEqual(['bob', 'alice']);
  });

  it('exports usage events as CSV for billing with --format csv (and through npm run usage)', async () => {
    const { code, stdout } = await run(['--format', 'csv', '--days', '7'], env, 'npm');
    expect(code).toBe(0);
    const lines = stdout.trimEnd().split('\r\n');
    expect(lines[0]).toBe(CSV_COLUMNS.join(','));
    const week = expectedTotals(PERIOD_WINDOWS.week, seeded.gateway);
    expect(lines).toHaveLength(1 + week.requests);
    const column = (name: string) => CSV_COLUMNS.indexOf(name as (typeof CSV_COLUMNS)[number]);
    const rows = lines.slice(1).map((line) => line.split(','));
    expect(rows.reduce((sum, row) => sum + Number(row[column('total_tokens')]), 0)).toBe(week.totalTokens);
    expect(rows.every((row) => row[column('timestamp')] >= '2030-06-09')).toBe(true);

    const alice = await run(['--format', 'csv', '--days', '30', '--user', 'alice'], env);
    const aliceRows = alice.stdout.trimEnd().split('\r\n').slice(1);
    expect(aliceRows).toHaveLength(expectedTotals(PERIOD_WINDOWS.month, seeded.gateway, 'alice').requests);
    expect(aliceRows.every((line) => line.split(',')[column('user_id')] === 'alice')).toBe(true);
    expect(SEED_EVENTS.some((event) => event.user === 'alice')).toBe(true);
  });

  it("shows a user key its own usage, and refuses another user's", async () => {
    const own = await run([], { ...env, TOKEN_LEDGER_API_KEY: seeded.aliceKey });
    expect(own.code).toBe(0);
    expect(own.stdout).toContain('Token usage, user alice: last 7 days');
    const other = await run(['--user', 'bob'], { ...env, TOKEN_LEDGER_API_KEY: seeded.aliceKey });
    expect(other.code).toBe(4);
    expect(other.stderr).toBe('token-usage: this API key may not read that usage (403 user "bob" does not belong to this API key)\n');
    const service = await run([], { ...env, TOKEN_LEDGER_API_KEY: seeded.serviceKey });
    expect(service.code).toBe(2);
    expect(service.stderr).toMatch(/^token-usage: the service rejected the options: user is required.*\(pass --user <id>\)\n$/);
  });

  it('exits 2 with a clear message for bad flags, and 0 for --help', async () => {
    const unknown = await run(['--dayz', '7'], env);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain("error: unknown option '--dayz'");
    expect(unknown.stdout).toBe('');
    const days = await run(['--days', 'seven'], env);
    expect(days.code).toBe(2);
    expect(days.stderr).toContain("option '--days <n>' argument 'seven' is invalid. must be a whole number from 1 to 366");
    const format = await run(['--format', 'xml'], env);
    expect(format.code).toBe(2);
    expect(format.stderr).toContain('Allowed choices are table, json, csv');
    const operation = await run(['--operation', 'nope'], env);
    expect(operation.code).toBe(2);
    expect(operation.stderr).toContain('the service rejected the options: operation must be one of');
    const noKey = await run([], { TOKEN_LEDGER_URL: seeded.baseUrl });
    expect(noKey.code).toBe(2);
    expect(noKey.stderr).toContain('no API key: pass --api-key <key> or set TOKEN_LEDGER_API_KEY');

    const help = await run(['--help']);
    expect(help.code).toBe(0);
    for (const flag of ['--days <n>', '--user <id>', '--operation <type>', '--model <name>', '--format <format>', '--url <url>', '--api-key <key>', 'TOKEN_LEDGER_URL', 'TOKEN_LEDGER_API_KEY', 'Exit codes']) {
      expect(help.stdout).toContain(flag);
    }
  });

  it('exits non-zero with a clear message for a bad key or an unreachable service', async () => {
    const badKey = await run([], { ...env, TOKEN_LEDGER_API_KEY: 'tl_admin_not-a-real-key' });
    expect(badKey.code).toBe(4);
    expect(badKey.stderr).toBe('token-usage: the service rejected the API key (401 Unknown API key)\n');
    expect(badKey.stdout).toBe('');

    const port = await closedPort();
    const down = await run(['--url', `http://127.0.0.1:${port}`], env);
    expect(down.code).toBe(3);
    expect(down.stderr).toBe(`token-usage: cannot reach the token-ledger service at http://127.0.0.1:${port}: ECONNREFUSED\n`);
  });
  it.each([['csv'], ['json'], ['table']])(
    'exits 0 without a stack when its reader closes before it writes (`--format %s | head -3`)',
    async (format) => {
      const { TOKEN_LEDGER_URL: _url, TOKEN_LEDGER_API_KEY: _key, ...inherited } = process.env;
      const child = spawn(process.execPath, [BIN, '--format', format], { cwd: ROOT, env: { ...inherited, NO_COLOR: '1', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
      // The reader goes away at once, as `head` does once it has its lines: every write of the CLI then fails with EPIPE.
      child.stdout.destroy();
      let stderr = '';
      child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
      const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
      expect(stderr).toBe('');
      expect(code).toBe(0);
    },
    60_000,
  );
});
