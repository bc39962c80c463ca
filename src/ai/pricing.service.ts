import { Injectable, Logger, OnModuleDestroy } from '@nestjs/common';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { AppConfig } from '../config/app-config';
import type { CostSource } from '../token-tracking/usage-record';
import { usdToMicros } from '../common/money';
import { resolveProviderSettings } from './ai-provider.factory';
import { GenaiPriceSource, PriceVenue } from './genai-price.source';

/** Rates that replace the entry's own once a call's input exceeds `aboveInputTokens` (long-context pricing). */
export interface PriceTier {
  aboveInputTokens: number;
  inputPerMillion?: number;
  outputPerMillion?: number;
  cachedInputPerMillion?: number;
  cacheWritePerMillion?: number;
  reasoningPerMillion?: number;
}

/** USD per one million tokens. */
export interface PriceEntry {
  effectiveFrom: string;
  inputPerMillion: number;
  outputPerMillion: number;
  /** Input read from the provider's prompt cache (default: the input price). */
  cachedInputPerMillion?: number;
  /** Input written to the provider's prompt cache (default: the input price). */
  cacheWritePerMillion?: number;
  reasoningPerMillion?: number;
  embeddingPerMillion?: number;
  /** Ascending by aboveInputTokens; the whole call is priced at the highest tier its input exceeds. */
  tiers?: PriceTier[];
  /** list (default), negotiated (a contract price) or custom (a model of our own). */
  basis?: 'list' | 'negotiated' | 'custom';
  /** Where the figure comes from, for whoever reconciles the bill. */
  source?: string;
}

/** Model (lower case) -> entries sorted by effectiveFrom ascending. */
export type PriceCatalog = ReadonlyMap<string, readonly PriceEntry[]>;

export interface LoadedPriceCatalog {
  models: PriceCatalog;
  /** The file's `version`, else `sha256:` and the first 12 hex digits of its content. */
  version: string;
}

export interface PricedUsage {
  /** All input tokens, cached and cache-written ones included (OpenAI's prompt_tokens). */
  promptTokens: number;
  completionTokens: number;
  /** Part of promptTokens read from the provider's prompt cache. */
  cachedTokens?: number;
  /** Part of promptTokens written to the provider's prompt cache. */
  cacheWriteTokens?: number;
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
  /** Which price list priced it: `catalog <version>` or `genai-prices@<version>`. */
  priceVersion?: string;
  /** The entry used: `<model>@<effectiveFrom>` in our catalog, `<provider>:<model id>` in genai-prices. */
  priceEntry?: string;
  /** Catalog key and entry used, when our catalog priced it. */
  catalogModel?: string;
  effectiveFrom?: string;
}

export class PriceCatalogError extends Error {}

export const BUNDLED_PRICE_CATALOG_PATH = join(__dirname, 'price-catalog.json');

const PRICE_FIELDS = [
  'inputPerMillion',
  'outputPerMillion',
  'cachedInputPerMillion',
  'cacheWritePerMillion',
  'reasoningPerMillion',
  'embeddingPerMillion',
] as const;
const TIER_PRICE_FIELDS = ['inputPerMillion', 'outputPerMillion', 'cachedInputPerMillion', 'cacheWritePerMillion', 'reasoningPerMillion'] as const;
const REQUIRED_PRICE_FIELDS = new Set(['inputPerMillion', 'outputPerMillion']);
const ENTRY_FIELDS = new Set<string>(['effectiveFrom', 'tiers', 'basis', 'source', ...PRICE_FIELDS]);
const TIER_FIELDS = new Set<string>(['aboveInputTokens', ...TIER_PRICE_FIELDS]);
const BASES = new Set(['list', 'negotiated', 'custom']);
/** Prices are kept exact as integers of 1e-6 USD per million tokens (i.e. 1e-6 micro-USD per token). */
const PRICE_SCALE = 1_000_000;
const PRICE_SCALE_BIG = BigInt(PRICE_SCALE);

const isPlainObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

const isIsoDate = (value: string) => {
  const date = new Date(`${value}T00:00:00Z`);
  return /^\d{4}-\d{2}-\d{2}$/.test(value) && !Number.isNaN(date.getTime()) && date.toISOString().startsWith(value);
};

const isPrice = (value: unknown) =>
  typeof value === 'number' && Number.isFinite(value) && value >= 0 && Math.abs(value * PRICE_SCALE - Math.round(value * PRICE_SCALE)) < 1e-6;

/** Validates a parsed catalog file; every problem names its path in the file. */
export function parsePriceCatalog(raw: unknown, source: string): PriceCatalog {
  return parseVersionedPriceCatalog(raw, source).models;
}

export function parseVersionedPriceCatalog(raw: unknown, source: string, text?: string): LoadedPriceCatalog {
  const fail = (problem: string): never => {
    throw new PriceCatalogError(`Invalid price catalog ${source}: ${problem}`);
  };
  if (!isPlainObject(raw)) return fail('the file must hold a JSON object with a "models" object');
  for (const key of Object.keys(raw)) {
    if (key !== 'models' && key !== 'version' && !key.startsWith('$')) fail(`unknown top-level key "${key}" (expected "models" or "version")`);
  }
  if (raw.version !== undefined && (typeof raw.version !== 'string' || raw.version.trim().length === 0 || raw.version.length > 64)) {
    fail('"version" must be a non-empty string of at most 64 characters');
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
        if (!isPrice(value)) fail(`${at}.${field} must be a non-negative number of USD per 1M tokens with at most 6 decimals (got ${JSON.stringify(value)})`);
      }
      if (entry.basis !== undefined && !BASES.has(entry.basis as string)) fail(`${at}.basis must be one of list, negotiated, custom`);
      if (entry.source !== undefined && typeof entry.source !== 'string') fail(`${at}.source must be a string`);
      if (entry.tiers !== undefined) {
        if (!Array.isArray(entry.tiers) || entry.tiers.length === 0) fail(`${at}.tiers must be a non-empty array`);
        let previous = -1;
        (entry.tiers as unknown[]).forEach((tier, t) => {
          const tierAt = `${at}.tiers[${t}]`;
          if (!isPlainObject(tier)) return fail(`${tierAt} must be an object`);
          for (const field of Object.keys(tier)) if (!TIER_FIELDS.has(field)) fail(`${tierAt} has unknown field "${field}"`);
          const above = tier.aboveInputTokens;
          if (typeof above !== 'number' || !Number.isSafeInteger(above) || above <= previous) {
            fail(`${tierAt}.aboveInputTokens must be an integer above the previous tier's (got ${JSON.stringify(above)})`);
          }
          previous = above as number;
          for (const field of TIER_PRICE_FIELDS) {
            if (tier[field] !== undefined && !isPrice(tier[field])) fail(`${tierAt}.${field} must be a non-negative number of USD per 1M tokens with at most 6 decimals`);
          }
        });
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
  const version = typeof raw.version === 'string'
    ? raw.version.trim()
    : `sha256:${createHash('sha256').update(text ?? JSON.stringify(raw)).digest('hex').slice(0, 12)}`;
  return { models: catalog, version };
}

export function loadPriceCatalog(path: string = BUNDLED_PRICE_CATALOG_PATH): PriceCatalog {
  return loadVersionedPriceCatalog(path).models;
}

export function loadVersionedPriceCatalog(path: string = BUNDLED_PRICE_CATALOG_PATH): LoadedPriceCatalog {
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
  return parseVersionedPriceCatalog(raw, absolute, text);
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
const min = (a: bigint, b: bigint) => (a < b ? a : b);

/** The entry's rates for a call of `promptTokens` input tokens: its own, or those of the highest tier exceeded. */
export function ratesFor(entry: PriceEntry, promptTokens: number): PriceEntry {
  if (!entry.tiers) return entry;
  let rates: PriceEntry = entry;
  for (const tier of entry.tiers) {
    if (promptTokens <= tier.aboveInputTokens) break;
    const { aboveInputTokens: _above, ...overrides } = tier;
    rates = { ...rates, ...overrides };
  }
  return rates;
}

/**
 * Exact cost in micro-USD of one record under one price entry, rounded half-up once.
 * Cached and cache-written tokens are parts of promptTokens, reasoning tokens part of
 * completionTokens (as OpenAI and OpenRouter count them), so no token is billed twice.
 */
export function costMicrosFor(entry: PriceEntry, usage: PricedUsage): number {
  const prompt = tokens(usage.promptTokens);
  const completion = tokens(usage.completionTokens);
  const cached = min(tokens(usage.cachedTokens), prompt);
  const written = min(tokens(usage.cacheWriteTokens), prompt - cached);
  const reasoning = min(tokens(usage.reasoningTokens), completion);
  const rates = ratesFor(entry, usage.promptTokens);
  const input = scaled(rates.inputPerMillion);
  const output = scaled(rates.outputPerMillion);
  // tokens x (USD per 1M tokens) = micro-USD, so the sum is in units of 1e-6 micro-USD.
  const total =
    (prompt - cached - written) * input +
    cached * scaled(rates.cachedInputPerMillion ?? rates.inputPerMillion) +
    written * scaled(rates.cacheWritePerMillion ?? rates.inputPerMillion) +
    (completion - reasoning) * output +
    reasoning * scaled(rates.reasoningPerMillion ?? rates.outputPerMillion) +
    tokens(usage.embeddingTokens) * scaled(rates.embeddingPerMillion ?? rates.inputPerMillion);
  return Number((total + PRICE_SCALE_BIG / 2n) / PRICE_SCALE_BIG);
}

/** The record fields that say what priced it. */
export function priceAttribution(quote: PriceQuote): { priceVersion?: string; priceEntry?: string } {
  return {
    ...(quote.priceVersion !== undefined ? { priceVersion: quote.priceVersion } : {}),
    ...(quote.priceEntry !== undefined ? { priceEntry: quote.priceEntry } : {}),
  };
}

/** How often the same unpriced model is warned about in the log. */
const UNPRICED_WARN_INTERVAL_MS = 60 * 60 * 1000;

@Injectable()
export class PricingService implements OnModuleDestroy {
  private readonly logger = new Logger(PricingService.name);
  private readonly catalog: PriceCatalog;
  readonly catalogVersion: string;
  private readonly genai: GenaiPriceSource | null;
  private readonly stopAutoUpdate?: () => void;
  /** Unpriced calls per model in this process, and when the log last said so (the counts by model are in the metrics). */
  private readonly unpriced = new Map<string, { calls: number; warnedAt: number }>();
  private readonly catalogKeys = new Map<string, { key: string; entries: readonly PriceEntry[] }[]>();

  constructor(config: AppConfig) {
    const loaded = loadVersionedPriceCatalog(config.PRICE_CATALOG_PATH ?? BUNDLED_PRICE_CATALOG_PATH);
    this.catalog = loaded.models;
    this.catalogVersion = loaded.version;
    this.genai = config.PRICES_GENAI_FALLBACK ? new GenaiPriceSource(venueOf(config)) : null;
    if (this.genai && config.PRICES_AUTO_UPDATE) {
      this.stopAutoUpdate = this.genai.enableAutoUpdate(config.PRICES_AUTO_UPDATE_URL, config.PRICES_AUTO_UPDATE_HOURS * 3_600_000, (message) =>
        this.logger.warn(`Fetching genai-prices data from ${config.PRICES_AUTO_UPDATE_URL} failed (${message}); keeping the data in use`),
      );
    }
  }

  onModuleDestroy(): void {
    this.stopAutoUpdate?.();
  }

  /** Settles once a PRICES_AUTO_UPDATE fetch under way is in use (or failed). */
  pricesUpdated(): Promise<void> {
    return this.genai?.updated() ?? Promise.resolve();
  }

  /**
   * Provider-reported cost wins; else our catalog's entry in force at `at`; else
   * genai-prices' data for the provider in use; else `unpriced` at 0 (warned once per model
   * per hour, and counted) so the record is still kept.
   * `model` may list alternatives (reported model first, then the requested one).
   */
  price(model: string | readonly string[], usage: PricedUsage, at: Date = new Date()): PriceQuote {
    if (typeof usage.costUsd === 'number' && Number.isFinite(usage.costUsd) && usage.costUsd >= 0) {
      return { costMicros: usdToMicros(usage.costUsd), costSource: 'provider' };
    }
    return this.listPrice(model, usage, at);
  }

  /** The price from our catalog or genai-prices, ignoring any provider-reported cost (what re-pricing uses). */
  listPrice(model: string | readonly string[], usage: PricedUsage, at: Date, options: { quiet?: boolean } = {}): PriceQuote {
    const models = typeof model === 'string' ? [model] : model;
    const found = this.entryFor(models, at);
    if (found) {
      return {
        costMicros: costMicrosFor(found.entry, usage),
        costSource: 'catalog',
        priceVersion: `catalog ${this.catalogVersion}`,
        priceEntry: `${found.model}@${found.entry.effectiveFrom}`,
        catalogModel: found.model,
        effectiveFrom: found.entry.effectiveFrom,
      };
    }
    if (this.genai) {
      for (const name of models) {
        const listed = this.genai.price(name, at);
        if (listed) {
          return { costMicros: costMicrosFor(listed.entry, usage), costSource: 'genai-prices', priceVersion: this.genai.version, priceEntry: listed.ref };
        }
      }
    }
    if (!options.quiet) this.noteUnpriced(models[0] ?? '(none)', at);
    return { costMicros: 0, costSource: 'unpriced' };
  }

  entryFor(models: string | readonly string[], at: Date): { model: string; entry: PriceEntry } | null {
    const day = at.toISOString().slice(0, 10);
    for (const model of typeof models === 'string' ? [models] : models) {
      for (const { key, entries } of this.catalogKeysFor(model)) {
        for (let i = entries.length - 1; i >= 0; i--) {
          if (entries[i].effectiveFrom <= day) return { model: key, entry: entries[i] };
        }
      }
    }
    return null;
  }

  /** The catalog keys a model name reaches, most specific first; cached per name, as names repeat on every call. */
  private catalogKeysFor(model: string): { key: string; entries: readonly PriceEntry[] }[] {
    let keys = this.catalogKeys.get(model);
    if (!keys) {
      keys = catalogCandidates(model).flatMap((key) => (this.catalog.has(key) ? [{ key, entries: this.catalog.get(key)! }] : []));
      if (this.catalogKeys.size >= 2_000) this.catalogKeys.delete(this.catalogKeys.keys().next().value!);
      this.catalogKeys.set(model, keys);
    }
    return keys;
  }

  /** The most one token of this model can cost, in micro-USD (USD per million = micro-USD per token). */
  maxMicrosPerToken(models: string | readonly string[], at: Date = new Date()): number {
    const list = typeof models === 'string' ? [models] : models;
    const entry = this.entryFor(list, at)?.entry ?? list.map((name) => this.genai?.price(name, at)?.entry).find((found) => found !== undefined);
    if (!entry) return 0;
    return Math.max(...[entry, ...(entry.tiers ?? [])].flatMap((rates) =>
      [rates.inputPerMillion, rates.outputPerMillion, rates.cacheWritePerMillion, rates.reasoningPerMillion, 'embeddingPerMillion' in rates ? rates.embeddingPerMillion : undefined].map((rate) => rate ?? 0),
    ));
  }

  models(): string[] {
    return [...this.catalog.keys()];
  }

  private noteUnpriced(model: string, at: Date): void {
    const now = Date.now();
    const seen = this.unpriced.get(model) ?? { calls: 0, warnedAt: -Infinity };
    seen.calls += 1;
    if (!this.unpriced.has(model) && this.unpriced.size >= 1_000) this.unpriced.delete(this.unpriced.keys().next().value!);
    this.unpriced.set(model, seen);
    if (now - seen.warnedAt < UNPRICED_WARN_INTERVAL_MS) return;
    seen.warnedAt = now;
    this.logger.warn(
      `No price for model "${model}" at ${at.toISOString()} (${seen.calls} unpriced call(s) so far); its usage is recorded as unpriced (cost 0). ` +
        'Add it to the price catalog, then re-price the period (token-usage reprice).',
    );
  }
}

function venueOf(config: AppConfig): PriceVenue {
  try {
    const settings = resolveProviderSettings(config);
    return settings.kind === 'simulated' ? { kind: 'simulated' } : { kind: settings.kind, baseUrl: settings.baseUrl };
  } catch {
    return { kind: 'simulated' };
  }
}
