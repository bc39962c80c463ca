import { formatDuration, formatInteger, formatMoney, formatPercent, formatTokens } from './usage-format';

describe('usage-format', () => {
  it.each([
    [0, '0'],
    [950, '950'],
    [999, '999'],
    [1000, '1K'],
    [1234, '1.2K'],
    [15_300, '15.3K'],
    [15_349, '15.3K'],
    [1_500_000, '1.5M'],
    [2_345_000_000, '2.3B'],
    [-1234, '-1.2K'],
    [Number.NaN, '—'],
  ])('formats %p tokens as %p', (tokens, text) => {
    expect(formatTokens(tokens)).toBe(text);
  });

  it.each([
    [0, 'ZAR', 'R0.00'],
    [0, 'USD', '$0.00'],
    [12.345, 'ZAR', 'R12.35'],
    [1234.5, 'ZAR', 'R1,234.50'],
    [0.0123, 'USD', '$0.0123'],
    [0.5, 'USD', '$0.50'],
    [0.00001, 'USD', '$0.00'],
    [1.25, 'EUR', '€1.25'],
    [1.25, 'CHF', 'CHF1.25'],
    [-2.5, 'ZAR', '-R2.50'],
    [3, 'XYZ', 'XYZ3.00'],
    [3, 'US', '3.00 US'],
    [Number.POSITIVE_INFINITY, 'USD', '—'],
  ])('formats %p %s as %p', (amount, currency, text) => {
    expect(formatMoney(amount, currency)).toBe(text);
  });

  it('formats plain counts, ratios and durations', () => {
    expect(formatInteger(1_234_567)).toBe('1,234,567');
    expect(formatPercent(0.955)).toBe('95.5%');
    expect(formatPercent(1)).toBe('100%');
    expect(formatPercent(0)).toBe('0%');
    expect(formatDuration(840)).toBe('840 ms');
    expect(formatDuration(1240)).toBe('1.2 s');
    expect(formatDuration(2000)).toBe('2 s');
    expect(formatDuration(150_000)).toBe('2.5 min');
  });
});
