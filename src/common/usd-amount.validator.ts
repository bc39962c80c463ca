import { ValidateBy, ValidationOptions } from 'class-validator';
import { MICROS_PER_USD } from './money';

export const MAX_USD_AMOUNT = 1_000_000_000;

/**
 * A finite USD amount from 0 to MAX_USD_AMOUNT in whole micro-dollars (what the ledger stores).
 * class-validator's maxDecimalPlaces reads decimals off `String(value)` and throws on exponent
 * notation such as 1e-7; this works on the number itself.
 */
export function isUsdAmount(value: unknown): boolean {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0 || value > MAX_USD_AMOUNT) return false;
  const micros = value * MICROS_PER_USD;
  return Math.abs(micros - Math.round(micros)) < Math.max(1e-6, micros * 1e-14);
}

export function IsUsdAmount(options?: ValidationOptions): PropertyDecorator {
  return ValidateBy(
    {
      name: 'isUsdAmount',
      validator: {
        validate: isUsdAmount,
        defaultMessage: (args) => `${args?.property ?? 'value'} must be a number of USD from 0 to ${MAX_USD_AMOUNT} with at most 6 decimal places`,
      },
    },
    options,
  );
}
