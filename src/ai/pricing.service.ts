import { Injectable, Logger } from '@nestjs/common';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { AppConfig } from '../config/app-config';
import type { CostSource } from '../token-tracking/usage-record';
import { usdToMicros } from '../common/money';

/** USD per one million tokens. */
export interface PriceEntry {
  effectiveFrom: string;
  inputPerMillion: number;
  outputPerMillion: number;
  cachedInputPerMillion?: number;
  reasoningPerMillion?: number;
  embeddingPerMillion?: number;
}

/** Model (lower case) -> entries sorted by effectiveFrom ascending. */
export type PriceCatalog = ReadonlyMap<string, readonly PriceEntry[]>;

export interface PricedUsage {
  promptTokens: number;
  completionTokens: number;
  /** Part of promptTokens read from the provider's prompt cache. */
  cachedTokens?: number;
  /** Part of completionTokens spent on reasoning. */
  reasoningTokens?: number;
  embeddingTokens?: number;
  /** What the provider says it charged, in USD; wins over the catalog. */
  costUsd?: number;
}

export interface PriceQuote {
  /** Integer micro-USD, rounded half-up once for the whole record. */
  costMicros: number;
  costSource: CostSource;
  /** Catalog key and entry used, when the catalog priced it. */
  catalogModel?: string;
  effectiveFrom?: string;
}

export class PriceCatalogError extends Error {}

export const BUNDLED_PRICE_CATALOG_PATH = join(__dirname, 'price-catalog.json');

const PRICE_FIELDS = ['inputPerMillion', 'outputPerMillion', 'cachedInputPerMillion', 'reasoningPerMillion', 'embeddingPerMillion'] as const;
const REQUIRED_PRICE_FIELDS = new Set(['inputPerMillion', 'outputPerMillion']);
const ENTRY_FIELDS = new Set<string>(['effectiveFrom', ...PRICE_FIELDS]);
/** Prices are kept exact as integers of 1e-6 USD per million tokens (i.e. 1e-6 micro-USD per token). */
const PRICE_SCALE = 1_000_000;
const PRICE_SCALE_BIG = BigInt(PRICE_SCALE);

const isPlainObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

const isIsoDate = (value: string) => {
  const date = new Date(`${value}T00:00:00Z`);
  return /^\d{4}-\d{2}-\d{2}$/.test(value) && !Number.isNaN(date.getTime()) && date.toISOString().startsWith(value);
};

/** Validates a parsed catalog file; every problem names its path in the file. */
export function parsePriceCatalog(raw: unknown, source: string): PriceCatalog {
  const fail = (problem: string): never => {
    throw new PriceCatalogError(`Invalid price catalog ${source}: ${problem}`);
  };
  if (!isPlainObject(raw)) return fail('the file must hold a JSON object with a "models" object');
  for (const key of Object.keys(raw)) {
    if (key !== 'models' && !key.startsWith('$')) fail(`unknown top-level key "${key}" (expected "models")`);
  }
  const models = raw.models;
  if (!isPlainObject(models)) return fail('"models" must be an object of model name -> list of price entries');

  const catalog = new Map<string, PriceEntry[]>();
  for (const [model, entries] of Object.entries(models)) {
    const key = model.trim().toLowerCase();
    if (key.length === 0) fail('a model name is empty');
    if (catalog.has(key)) fail(`model "${model}" is listed twice (names are case-insensitive)`);
    if (!Array.isArray(entries) || entries.length === 0) fail(`models["${model}"] must be a non-empty array of price entries`);
    const parsed = (entries as unknown[]).map((entry, index) => {
      const at = `models["${model}"][${index}]`;
      if (!isPlainObject(entry)) return fail(`${at} must be an object`);
      for (const field of Object.keys(entry)) {
        if (!ENTRY_FIELDS.has(field)) fail(`${at} has unknown field "${field}"`);
      }
      if (typeof entry.effectiveFrom !== 'string' || !isIsoDate(entry.effectiveFrom)) {
        fail(`${at}.effectiveFrom must be a date YYYY-MM-DD (got ${JSON.stringify(entry.effectiveFrom)})`);
      }
      for (const field of PRICE_FIELDS) {
        const value = entry[field];
        if (value === undefined && !REQUIRED_PRICE_FIELDS.has(field)) continue;
        const valid =
          typeof value === 'number' &&
          Number.isFinite(value) &&
          value >= 0 &&
          Math.abs(value * PRICE_SCALE - Math.round(value * PRICE_SCALE)) < 1e-6;
        if (!valid) fail(`${at}.${field} must be a non-negative number of USD per 1M tokens with at most 6 decimals (got ${JSON.stringify(value)})`);
      }
      return entry as unknown as PriceEntry;
    });
    parsed.sort((a, b) => a.effectiveFrom.localeCompare(b.effectiveFrom));
    for (let i = 1; i < parsed.length; i++) {
      if (parsed[i].effectiveFrom === parsed[i - 1].effectiveFrom) {
        fail(`models["${model}"] has two entries effective from ${parsed[i].effectiveFrom}`);
      }
    }
    catalog.set(key, parsed);
  }
  return catalog;
}

export function loadPriceCatalog(path: string = BUNDLED_PRICE_CATALOG_PATH): PriceCatalog {
  const absolute = resolve(path);
  let text: string;
  try {
    text = readFileSync(absolute, 'utf8');
  } catch (error) {
    throw new PriceCatalogError(`Cannot read price catalog ${absolute}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (error) {
    throw new PriceCatalogError(`Invalid price catalog ${absolute}: not valid JSON (${(error as Error).message})`);
  }
  return parsePriceCatalog(raw, absolute);
}

/** Names to try, most specific first: as given, without/with the openai/ prefix, without a snapshot date. */
export function catalogCandidates(model: string): string[] {
  const name = model.trim().toLowerCase();
  const bases = name.startsWith('openai/') ? [name, name.slice('openai/'.length)] : name.includes('/') ? [name] : [name, `openai/${name}`];
  const candidates = [...bases];
  for (const base of bases) {
    const undated = base.replace(/-\d{4}-\d{2}-\d{2}$/, '').replace(/-\d{4}$/, '');
    if (undated !== base) candidates.push(undated);
  }
  return [...new Set(candidates)];
}

const scaled = (pricePerMillion: number) => BigInt(Math.round(pricePerMillion * PRICE_SCALE));
const tokens = (count: number | undefined) => BigInt(Math.max(0, Math.trunc(count ?? 0)));

/** Exact cost in micro-USD of one record under one price entry, rounded half-up once. */
export function costMicrosFor(entry: PriceEntry, usage: PricedUsage): number {
  const prompt = tokens(usage.promptTokens);
  const completion = tokens(usage.completionTokens);
  const cached = [tokens(usage.cachedTokens), prompt].reduce((a, b) => (a < b ? a : b));
  const reasoning = [tokens(usage.reasoningTokens), completion].reduce((a, b) => (a < b ? a : b));
  const input = scaled(entry.inputPerMillion);
  const output = scaled(entry.outputPerMillion);
  // tokens x (USD per 1M tokens) = micro-USD, so the sum is in units of 1e-6 micro-USD.
  const total =
    (prompt - cached) * input +
    cached * scaled(entry.cachedInputPerMillion ?? entry.inputPerMillion) +
    (completion - reasoning) * output +
    reasoning * scaled(entry.reasoningPerMillion ?? entry.outputPerMillion) +
    tokens(usage.embeddingTokens) * scaled(entry.embeddingPerMillion ?? entry.inputPerMillion);
  return Number((total + PRICE_SCALE_BIG / 2n) / PRICE_SCALE_BIG);
}

@Injectable()
export class PricingService {
  private readonly logger = new Logger(PricingService.name);
  private readonly catalog: PriceCatalog;
  private readonly warnedUnpriced = new Set<string>();

  constructor(config: AppConfig) {
    this.catalog = loadPriceCatalog(config.PRICE_CATALOG_PATH ?? BUNDLED_PRICE_CATALOG_PATH);
  }

  /**
   * Provider-reported cost wins; else the catalog entry in force at `at`; else
   * `unpriced` at 0 (warned once per model) so the record is still kept.
   * `model` may list alternatives (reported model first, then the requested one).
   */
  price(model: string | readonly string[], usage: PricedUsage, at: Date = new Date()): PriceQuote {
    if (typeof usage.costUsd === 'number' && Number.isFinite(usage.costUsd) && usage.costUsd >= 0) {
      return { costMicros: usdToMicros(usage.costUsd), costSource: 'provider' };
    }
    const models = typeof model === 'string' ? [model] : model;
    const found = this.entryFor(models, at);
    if (found) {
      return {
        costMicros: costMicrosFor(found.entry, usage),
        costSource: 'catalog',
        catalogModel: found.model,
        effectiveFrom: found.entry.effectiveFrom,
      };
    }
    const name = models[0] ?? '(none)';
    if (!this.warnedUnpriced.has(name)) {
      this.warnedUnpriced.add(name);
      this.logger.warn(`No price for model "${name}" at ${at.toISOString()}; its usage is recorded as unpriced (cost 0). Add it to the price catalog.`);
    }
    return { costMicros: 0, costSource: 'unpriced' };
  }

  entryFor(models: string | readonly string[], at: Date): { model: string; entry: PriceEntry } | null {
    const day = at.toISOString().slice(0, 10);
    for (const model of typeof models === 'string' ? [models] : models) {
      for (const candidate of catalogCandidates(model)) {
        const entries = this.catalog.get(candidate);
        if (!entries) continue;
        const entry = entries.filter((e) => e.effectiveFrom <= day).pop();
        if (entry) return { model: candidate, entry };
      }
    }
    return null;
  }

  /** The most one token of this model can cost, in micro-USD (USD per million = micro-USD per token). */
  maxMicrosPerToken(models: string | readonly string[], at: Date = new Date()): number {
    const found = this.entryFor(models, at);
    if (!found) return 0;
    const { entry } = found;
    return Math.max(entry.inputPerMillion, entry.outputPerMillion, entry.reasoningPerMillion ?? 0, entry.embeddingPerMillion ?? 0);
  }

  models(): string[] {
    return [...this.catalog.keys()];
  }
}
