import { microsToUsd, usdToMicros } from './money';

describe('money', () => {
  it('converts dollars to integer micros, rounding half away from zero at the micro', () => {
    expect(usdToMicros(0.0085)).toBe(8500);
    expect(usdToMicros(1.25)).toBe(1_250_000);
    expect(usdToMicros(0.0000015)).toBe(2);
    expect(Number.isInteger(usdToMicros(0.1 + 0.2))).toBe(true);
  });

  it('sums in micros stay exact where float dollars drift', () => {
    const perCall = 0.1;
    let floatSum = 0;
    let microSum = 0;
    for (let i = 0; i < 10; i += 1) {
      floatSum += perCall;
      microSum += usdToMicros(perCall);
    }
    expect(floatSum).not.toBe(1);
    expect(microsToUsd(microSum)).toBe(1);
  });
});
