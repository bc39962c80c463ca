import { MICROS_PER_USD } from '../common/money';

/** Display figures of a stored micro-USD amount: exact USD and the DISPLAY_CURRENCY amount. */
export function displayCost(costMicros: number, rate: number): { costUsd: number; cost: number } {
  const costUsd = costMicros / MICROS_PER_USD;
  return { costUsd, cost: Math.round(costUsd * rate * 1e6) / 1e6 };
}

/** Ratio in [0, 1] with four decimals; 0 when nothing was attempted. */
export function ratio(part: number, whole: number): number {
  return whole === 0 ? 0 : Math.round((part / whole) * 10_000) / 10_000;
}
