import { formatMoney, formatTokens } from '../dashboard/web/usage-format';
import { displayCost, ratio } from './usage-format';

describe('usage formatting', () => {
  it.each([
    [950, '950'],
    [1234, '1.2K'],
    [15300, '15.3K'],
    [1_500_000, '1.5M'],
  ])('formats %p tokens as %p', (tokens, text) => {
    expect(formatTokens(tokens)).toBe(text);
  });

  it.each([
    [0, 'ZAR', 'R0.00'],
    [12.345, 'ZAR', 'R12.35'],
    [0.0123, 'USD', '$0.0123'],
    [1.25, 'EUR', '€1.25'],
  ])('formats %p %s as %p', (amount, currency, text) => {
    expect(formatMoney(amount, currency)).toBe(text);
  });

  it('derives display costs from micro-USD', () => {
    expect(displayCost(1_250_000, 18.5)).toEqual({ costUsd: 1.25, cost: 23.125 });
    expect(ratio(1, 3)).toBe(0.3333);
    expect(ratio(0, 0)).toBe(0);
  });
});
