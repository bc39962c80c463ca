import { EXIT, parseUsageCliOptions } from './usage-cli-options';

describe('parseUsageCliOptions', () => {
  const previous = { url: process.env.TOKEN_LEDGER_URL, key: process.env.TOKEN_LEDGER_API_KEY };
  let out: string;
  let err: string;
  const output = { writeOut: (text: string) => (out += text), writeErr: (text: string) => (err += text) };
  const parse = (...argv: string[]) => parseUsageCliOptions(argv, output);

  beforeEach(() => {
    out = '';
    err = '';
    delete process.env.TOKEN_LEDGER_URL;
    delete process.env.TOKEN_LEDGER_API_KEY;
  });

  afterAll(() => {
    if (previous.url !== undefined) process.env.TOKEN_LEDGER_URL = previous.url;
    if (previous.key !== undefined) process.env.TOKEN_LEDGER_API_KEY = previous.key;
  });

  it('reads every flag', () => {
    const options = parse('--days', '30', '--user', 'u1', '--operation', 'rag_answer', '--model', 'openai/gpt-4o', '--format', 'csv', '--url', 'https://ledger.example:8443/base', '--api-key', 'k');
    expect(options).toEqual({ days: 30, user: 'u1', operation: 'rag_answer', model: 'openai/gpt-4o', format: 'csv', url: new URL('https://ledger.example:8443/base'), apiKey: 'k' });
  });

  it('defaults to 7 days, the table format and localhost, and takes the URL and key from the environment', () => {
    expect(parse('--api-key', 'k')).toMatchObject({ days: 7, format: 'table', url: new URL('http://localhost:3000') });
    process.env.TOKEN_LEDGER_URL = 'http://10.0.0.5:3000';
    process.env.TOKEN_LEDGER_API_KEY = 'from-env';
    expect(parse()).toMatchObject({ url: new URL('http://10.0.0.5:3000'), apiKey: 'from-env' });
    expect(parse('--api-key', 'flag')).toMatchObject({ apiKey: 'flag' });
  });

  it.each([
    [['--days', '0'], 'must be a whole number from 1 to 366'],
    [['--days', '367'], 'must be a whole number from 1 to 366'],
    [['--days', '1.5'], 'must be a whole number from 1 to 366'],
    [['--format', 'xml'], 'Allowed choices are table, json, csv'],
    [['--url', 'ftp://host'], 'must be an http(s) URL'],
    [['--user', ' '], 'user must not be empty'],
    [['--frobnicate'], "unknown option '--frobnicate'"],
    [['stray'], 'too many arguments'],
    [['--days'], "option '--days <n>' argument missing"],
  ])('rejects %j with exit code 2', (argv, message) => {
    expect(parse('--api-key', 'k', ...argv)).toBe(EXIT.usage);
    expect(err).toContain(message);
    expect(err).toContain('--help');
  });

  it('asks for a key when there is none', () => {
    expect(parse()).toBe(EXIT.usage);
    expect(err).toContain('no API key: pass --api-key <key> or set TOKEN_LEDGER_API_KEY');
  });

  it('prints help to stdout with exit code 0', () => {
    expect(parse('--help')).toBe(EXIT.ok);
    expect(out).toContain('Usage: token-usage [options]');
    expect(out).toContain('Exit codes:');
    expect(err).toBe('');
  });
});
