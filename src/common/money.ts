/** Money is stored as integer micro-USD so sums are exact on every backend. */
export const MICROS_PER_USD = 1_000_000;

/** Integer micro-USD, half-up; toPrecision first so 1.4999999999999998 (float noise for 1.5) rounds up. */
export function usdToMicros(usd: number): number {
  return Math.round(Number((usd * MICROS_PER_USD).toPrecision(12)));
}

/** For display and JSON responses only; never stored. */
export function microsToUsd(micros: number): number {
  return micros / MICROS_PER_USD;
}
