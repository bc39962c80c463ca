import { isUsdAmount } from './usd-amount.validator';

describe(isUsdAmount.name, () => {
  it.each([0, 1, 5, 0.000001, 1e-6, 0.1 + 0.2, 19.99, 1_000_000_000])('accepts %p', (value) => {
    expect(isUsdAmount(value)).toBe(true);
  });

  it.each([1e-7, 0.0000001, 1.0000005, -1, 1e309, Infinity, NaN, 1e10, '5', null])('rejects %p without throwing', (value) => {
    expect(isUsdAmount(value)).toBe(false);
  });
});
