import { plainToInstance } from 'class-transformer';
import { IsIn, IsInt, IsNumber, IsOptional, Min, validateSync } from 'class-validator';

export const FAIL_MODES = ['open', 'closed'] as const;
export type FailMode = (typeof FAIL_MODES)[number];

/** Limits of one tier (or one user's override). A missing or null limit means unlimited. */
export class TierLimits {
  @IsOptional() @IsInt() @Min(0) rolling24hTokens?: number | null;
  @IsOptional() @IsInt() @Min(0) dailyTokens?: number | null;
  @IsOptional() @IsNumber() @Min(0) monthlyCostUsd?: number | null;
  /** What to do while Redis is unreachable: open = allow, closed = refuse with 503. */
  @IsOptional() @IsIn(FAIL_MODES) failMode?: FailMode;
}

export type TierTable = Record<string, TierLimits>;

export const DEFAULT_TIERS: TierTable = {
  FREE: { rolling24hTokens: 100_000, dailyTokens: 100_000, monthlyCostUsd: 1, failMode: 'open' },
  JIVE: { rolling24hTokens: 1_000_000, dailyTokens: 1_000_000, monthlyCostUsd: 25, failMode: 'open' },
  JIGGA: { rolling24hTokens: null, dailyTokens: null, monthlyCostUsd: null, failMode: 'open' },
};

export const TIER_NAME_PATTERN = /^[A-Z][A-Z0-9_]{0,31}$/;

/** Parses and validates the TIER_LIMITS JSON; throws a message naming the bad tier and field. */
export function parseTierTable(json: string | undefined): TierTable {
  if (!json) return DEFAULT_TIERS;
  let raw: unknown;
  try {
    raw = JSON.parse(json);
  } catch (error) {
    throw new Error(`TIER_LIMITS is not valid JSON: ${(error as Error).message}`);
  }
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) throw new Error('TIER_LIMITS must be a JSON object of tier name -> limits');
  const table: TierTable = {};
  for (const [name, value] of Object.entries(raw)) {
    if (!TIER_NAME_PATTERN.test(name)) throw new Error(`TIER_LIMITS tier name "${name}" must match ${TIER_NAME_PATTERN.source}`);
    table[name] = validateLimits(value, `TIER_LIMITS.${name}`);
  }
  if (Object.keys(table).length === 0) throw new Error('TIER_LIMITS must define at least one tier');
  return table;
}

export function validateLimits(value: unknown, label: string): TierLimits {
  if (!value || typeof value !== 'object' || Array.isArray(value)) throw new Error(`${label} must be an object`);
  const known = ['rolling24hTokens', 'dailyTokens', 'monthlyCostUsd', 'failMode'];
  const unknown = Object.keys(value).filter((key) => !known.includes(key));
  if (unknown.length > 0) throw new Error(`${label} has unknown field(s): ${unknown.join(', ')}`);
  const limits = plainToInstance(TierLimits, value);
  const errors = validateSync(limits, { skipNullProperties: true });
  if (errors.length > 0) {
    const messages = errors.flatMap((error) => Object.values(error.constraints ?? {}));
    throw new Error(`${label}: ${messages.join('; ')}`);
  }
  return { ...limits };
}

/** A user's effective limits: the tier's, with the user's own overrides on top. */
export function effectiveLimits(tier: TierLimits, override?: TierLimits | null): TierLimits {
  return { ...tier, ...Object.fromEntries(Object.entries(override ?? {}).filter(([, value]) => value !== undefined)) };
}
