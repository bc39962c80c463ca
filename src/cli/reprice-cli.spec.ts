import { parseRepriceOptions, renderRepriceReport } from './reprice-cli';
import { EXIT } from './usage-cli-options';

describe('token-usage reprice', () => {
  const capture = () => {
    const output = { out: '', err: '' };
    return { output, sink: { writeOut: (text: string) => (output.out += text), writeErr: (text: string) => (output.err += text) } };
  };
  const base = ['--from', '2026-11-01', '--to', '2026-12-01', '--api-key', 'tl_admin_x'];

  it('is a dry run unless --apply is given', () => {
    const { sink } = capture();
    expect(parseRepriceOptions(base, sink)).toMatchObject({ from: '2026-11-01T00:00:00.000Z', to: '2026-12-01T00:00:00.000Z', apply: false });
    expect(parseRepriceOptions([...base, '--dry-run'], sink)).toMatchObject({ apply: false });
    expect(parseRepriceOptions([...base, '--apply', '--model', 'gpt-4o', '--user', 'u1'], sink)).toMatchObject({ apply: true, model: 'gpt-4o', user: 'u1' });
  });

  it.each([
    [['--to', '2026-12-01', '--api-key', 'k'], "required option '--from <date>'"],
    [['--from', 'last week', '--to', '2026-12-01', '--api-key', 'k'], '--from must be an ISO 8601 date'],
    [[...base, '--apply', '--dry-run'], 'cannot be used with'],
    [['--from', '2026-11-01', '--to', '2026-12-01'], 'no API key'],
  ])('refuses %j with exit code 2 and says why', (argv, message) => {
    const { output, sink } = capture();
    expect(parseRepriceOptions(argv, sink)).toBe(EXIT.usage);
    expect(output.err).toContain(message);
  });

  it('prints the difference per user and per model to the micro-dollar', () => {
    const text = renderRepriceReport({
      dryRun: true,
      from: '2026-11-01T00:00:00.000Z',
      to: '2026-12-01T00:00:00.000Z',
      catalogVersion: 'catalog 2026-12-06.1',
      examined: 5,
      changed: 2,
      unchanged: 3,
      leftPriced: 0,
      conflicts: 0,
      resumed: 0,
      withoutBreakdown: 1,
      total: { events: 2, beforeMicros: 80_001, afterMicros: 45_000, deltaMicros: -35_001, deltaUsd: -0.035001 },
      users: [{ userId: null, events: 2, beforeMicros: 80_001, afterMicros: 45_000, deltaMicros: -35_001, deltaUsd: -0.035001 }],
      models: [{ model: 'gpt-4o', events: 2, beforeMicros: 80_001, afterMicros: 45_000, deltaMicros: -35_001, deltaUsd: -0.035001 }],
    });
    expect(text).toContain('DRY RUN');
    expect(text).toContain('Total: $0.080001 -> $0.045000 (-$0.035001)');
    expect(text).toMatch(/\(no user\)\s+2 event\(s\)\s+\$0\.080001 -> \$0\.045000\s+-\$0\.035001/);
    expect(text).toMatch(/gpt-4o\s+2 event\(s\)/);
    expect(text).toContain('1 changed event(s) predate cached-token counts');
  });
});
