/**
 * Number, money and time formatting shared by the web dashboard and the usage CLI.
 * It imports nothing, because it is compiled twice from this one source: to an ES module
 * served to the browser (tsconfig.web.json) and to CommonJS for the CLI (nest build).
 */

const compactFormat = new Intl.NumberFormat('en', { notation: 'compact', maximumFractionDigits: 1 });
const integerFormat = new Intl.NumberFormat('en', { maximumFractionDigits: 0 });
const NO_VALUE = '—';

/** Tokens as 950, 1.2K, 15.3K, 1.5M. */
export function formatTokens(tokens: number): string {
  return Number.isFinite(tokens) ? compactFormat.format(tokens) : NO_VALUE;
}

/** 1,234,567 */
export function formatInteger(value: number): string {
  return Number.isFinite(value) ? integerFormat.format(value) : NO_VALUE;
}

/**
 * Money in its currency's narrow symbol: $0.00, R12.35, €1.25. Two decimals; up to four
 * below one unit, so a fraction of a cent does not read as zero ($0.0012).
 */
export function formatMoney(amount: number, currency: string): string {
  if (!Number.isFinite(amount)) return NO_VALUE;
  const fraction = { minimumFractionDigits: 2, maximumFractionDigits: Math.abs(amount) < 1 && amount !== 0 ? 4 : 2 };
  let text: string;
  try {
    text = new Intl.NumberFormat('en', { style: 'currency', currency, currencyDisplay: 'narrowSymbol', ...fraction }).format(amount);
  } catch {
    // Not an ISO 4217 code Intl knows: the amount, then the code.
    return `${new Intl.NumberFormat('en', fraction).format(amount)} ${currency}`;
  }
  // "R 1.00" -> "R1.00" (Intl puts a space after letter symbols).
  return text.replace(/^(-?)([^\d\s-]+)\s+/u, '$1$2');
}

/** A ratio in [0, 1] as 95.5%. */
export function formatPercent(ratio: number): string {
  if (!Number.isFinite(ratio)) return NO_VALUE;
  const percent = ratio * 100;
  return `${percent.toFixed(Number.isInteger(percent) ? 0 : 1)}%`;
}

/** A duration in milliseconds: 840 ms, 1.2 s, 2.5 min. */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms)) return NO_VALUE;
  if (Math.abs(ms) < 1000) return `${Math.round(ms)} ms`;
  if (Math.abs(ms) < 60_000) return `${trimmed(ms / 1000)} s`;
  return `${trimmed(ms / 60_000)} min`;
}

function trimmed(value: number): string {
  return value.toFixed(1).replace(/\.0$/, '');
}
