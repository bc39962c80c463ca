import { calcPrice, type ModelInfo, type ModelPrice, type Provider, type TieredPrices, updatePrices, waitForUpdate } from '@pydantic/genai-prices';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { PriceEntry, PriceTier } from './pricing.service';

/** Where a call was sent, as far as choosing a price list goes. */
export interface PriceVenue {
  kind: 'openrouter' | 'openai' | 'compatible' | 'simulated';
  baseUrl?: string;
}

export interface GenaiPrice {
  entry: PriceEntry;
  /** `provider:model-id`, plus the dated or time-of-day variant when the model has several. */
  ref: string;
}

type PriceValue = number | TieredPrices | undefined;

/** OpenRouter's vendor prefixes that name a provider genai-prices also prices directly. */
const VENDOR_PROVIDERS: Record<string, string> = {
  openai: 'openai',
  anthropic: 'anthropic',
  google: 'google',
  mistralai: 'mistral',
  deepseek: 'deepseek',
  'x-ai': 'x-ai',
  cohere: 'cohere',
  perplexity: 'perplexity',
};

const LOOKUP_CACHE_LIMIT = 2_000;

export const GENAI_PRICES_VERSION: string = (() => {
  try {
    const pkg = JSON.parse(readFileSync(join(dirname(require.resolve('@pydantic/genai-prices')), '..', 'package.json'), 'utf8')) as { version?: string };
    return pkg.version ?? 'unknown';
  } catch {
    return 'unknown';
  }
})();

/**
 * @pydantic/genai-prices' bundled data, read as price entries that PricingService applies with
 * its own exact integer arithmetic (the library's float totals are not used). Model lookups are
 * cached per model name; choosing the dated or time-of-day variant is a few comparisons per call.
 */
export class GenaiPriceSource {
  private readonly lookups = new Map<string, { provider: Provider; model: ModelInfo } | null>();
  private readonly entries = new WeakMap<ModelPrice, PriceEntry>();
  /** OpenRouter entry -> vendor entry -> the price with the vendor's cache rates (or the entry as it was). */
  private readonly borrowed = new WeakMap<PriceEntry, WeakMap<PriceEntry, GenaiPrice>>();
  private dataLabel = `genai-prices@${GENAI_PRICES_VERSION}`;
  private updating: Promise<void> = Promise.resolve();

  constructor(private readonly venue: PriceVenue) {}

  /** `genai-prices@<package version>`, or the remote data's fetch time once an update replaced the bundled data. */
  get version(): string {
    return this.dataLabel;
  }

  price(model: string, at: Date): GenaiPrice | null {
    const found = this.lookup(model);
    if (!found) return null;
    const { prices, variant } = pricesAt(found.model, at);
    const entry = this.entryOf(prices);
    const ref = `${found.provider.id}:${found.model.id}${variant ? `@${variant}` : ''}`;
    if (found.provider.id !== 'openrouter' || (entry.cachedInputPerMillion !== undefined && entry.cacheWritePerMillion !== undefined)) return { entry, ref };
    return this.withVendorCacheRates(model, at, entry, ref);
  }

  /**
   * OpenRouter bills a first-party route at the vendor's own prices, prompt caching included,
   * but its listing in genai-prices often lacks the cache rates. When the vendor's own entry has
   * the same input and output prices, its cache rates are taken; otherwise cached tokens stay
   * at the input price (never under the invoice).
   */
  private withVendorCacheRates(model: string, at: Date, entry: PriceEntry, ref: string): GenaiPrice {
    const slash = model.indexOf('/');
    const vendor = slash > 0 ? VENDOR_PROVIDERS[model.slice(0, slash).toLowerCase()] : undefined;
    const own = vendor ? this.lookup(`${vendor}\u0000${model.slice(slash + 1)}`) : null;
    if (!own) return { entry, ref };
    const ownEntry = this.entryOf(pricesAt(own.model, at).prices);
    let byOwn = this.borrowed.get(entry);
    if (!byOwn) this.borrowed.set(entry, (byOwn = new WeakMap()));
    let result = byOwn.get(ownEntry);
    if (!result) {
      result = { entry, ref };
      if (ownEntry.inputPerMillion === entry.inputPerMillion && ownEntry.outputPerMillion === entry.outputPerMillion) {
        const merged: PriceEntry = { ...entry };
        if (merged.cachedInputPerMillion === undefined && ownEntry.cachedInputPerMillion !== undefined) merged.cachedInputPerMillion = ownEntry.cachedInputPerMillion;
        if (merged.cacheWritePerMillion === undefined && ownEntry.cacheWritePerMillion !== undefined) merged.cacheWritePerMillion = ownEntry.cacheWritePerMillion;
        if (merged.cachedInputPerMillion !== entry.cachedInputPerMillion || merged.cacheWritePerMillion !== entry.cacheWritePerMillion) {
          result = { entry: merged, ref: `${ref} (cache rates ${own.provider.id}:${own.model.id})` };
        }
      }
      byOwn.set(ownEntry, result);
    }
    return result;
  }

  private entryOf(prices: ModelPrice): PriceEntry {
    let entry = this.entries.get(prices);
    if (!entry) {
      entry = toPriceEntry(prices);
      this.entries.set(prices, entry);
    }
    return entry;
  }

  /**
   * Operator opt-in (PRICES_AUTO_UPDATE): replaces the bundled data with the maintainers' latest
   * file now and every `intervalMs`. A failed fetch keeps the data in use.
   */
  enableAutoUpdate(url: string, intervalMs: number, onError: (message: string) => void): () => void {
    let timer: NodeJS.Timeout | undefined;
    updatePrices(({ setProviderData }) => {
      const fetchOnce = () => {
        const fetched = fetch(url, { signal: AbortSignal.timeout(60_000) })
          .then(async (response) => {
            if (!response.ok) throw new Error(`HTTP ${response.status}`);
            const data = (await response.json()) as unknown;
            if (!Array.isArray(data) || data.length === 0) throw new Error('not a list of providers');
            return data as Provider[];
          })
          .catch((error: unknown) => {
            onError(error instanceof Error ? error.message : String(error));
            return null;
          });
        setProviderData(fetched);
        this.updating = fetched
          .then(async (data) => {
            if (!data) return;
            await waitForUpdate();
            this.lookups.clear();
            this.dataLabel = `genai-prices@remote:${new Date().toISOString()}`;
          })
          .catch((error: unknown) => onError(error instanceof Error ? error.message : String(error)));
      };
      fetchOnce();
      timer = setInterval(fetchOnce, intervalMs);
      timer.unref();
    });
    return () => clearInterval(timer);
  }

  /** Settles once the latest fetch of PRICES_AUTO_UPDATE is in use (or failed). */
  updated(): Promise<void> {
    return this.updating;
  }

  private lookup(model: string) {
    const key = model.trim().toLowerCase();
    if (this.lookups.has(key)) return this.lookups.get(key)!;
    const found = this.search(key);
    if (this.lookups.size >= LOOKUP_CACHE_LIMIT) this.lookups.delete(this.lookups.keys().next().value!);
    this.lookups.set(key, found);
    return found;
  }

  private search(model: string): { provider: Provider; model: ModelInfo } | null {
    if (this.venue.kind === 'simulated') return null;
    // `<provider>\0<model>`: one provider's own listing (see withVendorCacheRates).
    const direct = model.split('\u0000');
    if (direct.length === 2) return this.first([[direct[1], { providerId: direct[0] }]]);
    const slash = model.indexOf('/');
    const vendor = slash > 0 ? VENDOR_PROVIDERS[model.slice(0, slash)] : undefined;
    const bare = slash > 0 ? model.slice(slash + 1) : model;
    const attempts: [string, Parameters<typeof calcPrice>[2]][] = [];
    if (this.venue.kind === 'openrouter') {
      attempts.push([model, { providerId: 'openrouter' }]);
      if (vendor) attempts.push([bare, { providerId: vendor }]);
    } else if (this.venue.kind === 'openai') {
      attempts.push([bare, { providerId: 'openai' }]);
    } else {
      if (this.venue.baseUrl) attempts.push([model, { providerApiUrl: this.venue.baseUrl }], [bare, { providerApiUrl: this.venue.baseUrl }]);
      if (vendor) attempts.push([bare, { providerId: vendor }]);
      attempts.push([bare, {}]);
    }
    return this.first(attempts);
  }

  private first(attempts: [string, Parameters<typeof calcPrice>[2]][]): { provider: Provider; model: ModelInfo } | null {
    for (const [id, options] of attempts) {
      try {
        const result = calcPrice({}, id, options);
        if (result) return { provider: result.provider, model: result.model };
      } catch {
        // A model whose data the library cannot evaluate is treated as not found.
      }
    }
    return null;
  }
}

/** The price variant in force at `at`, as the library chooses it (last matching constraint wins). */
export function pricesAt(model: ModelInfo, at: Date): { prices: ModelPrice; variant?: string } {
  if (!Array.isArray(model.prices)) return { prices: model.prices };
  for (let i = model.prices.length - 1; i >= 0; i--) {
    const { constraint, prices } = model.prices[i];
    if (!constraint) return { prices };
    if (constraint.type === 'start_date') {
      if (at >= new Date(constraint.start_date)) return { prices, variant: constraint.start_date };
    } else if (constraint.type === 'time_of_date') {
      const seconds = at.getUTCHours() * 3600 + at.getUTCMinutes() * 60 + at.getUTCSeconds();
      const start = secondsOfDay(constraint.start_time);
      const end = secondsOfDay(constraint.end_time);
      const inside = end < start ? seconds >= start || seconds < end : seconds >= start && seconds < end;
      if (inside) return { prices, variant: `${constraint.start_time}-${constraint.end_time}` };
    }
  }
  return { prices: model.prices[0].prices };
}

function secondsOfDay(time: string): number {
  const match = /^(\d{2}):(\d{2}):(\d{2})(?:\.\d+)?(Z|([+-])(\d{2}):(\d{2}))$/.exec(time);
  if (!match) return 0;
  const offset = match[4] === 'Z' ? 0 : (match[5] === '+' ? 1 : -1) * (Number(match[6]) * 3600 + Number(match[7]) * 60);
  return (Number(match[1]) * 3600 + Number(match[2]) * 60 + Number(match[3]) - offset + 86_400) % 86_400;
}

const base = (value: PriceValue): number | undefined => (value === undefined ? undefined : typeof value === 'number' ? value : value.base);

/** The rate once the call's input exceeds `threshold` (the library's rule: the highest tier started). */
const rateAbove = (value: PriceValue, threshold: number): number | undefined => {
  if (value === undefined || typeof value === 'number') return undefined;
  let rate: number | undefined;
  for (const tier of value.tiers) if (threshold >= tier.start) rate = tier.price;
  return rate;
};

export function toPriceEntry(prices: ModelPrice): PriceEntry {
  const fields = {
    inputPerMillion: prices.input_mtok as PriceValue,
    outputPerMillion: prices.output_mtok as PriceValue,
    cachedInputPerMillion: prices.cache_read_mtok as PriceValue,
    cacheWritePerMillion: prices.cache_write_mtok as PriceValue,
    reasoningPerMillion: prices.output_reasoning_mtok as PriceValue,
  };
  const entry: PriceEntry = { effectiveFrom: '0000-01-01', inputPerMillion: base(fields.inputPerMillion) ?? 0, outputPerMillion: base(fields.outputPerMillion) ?? 0 };
  for (const key of ['cachedInputPerMillion', 'cacheWritePerMillion', 'reasoningPerMillion'] as const) {
    const rate = base(fields[key]);
    if (rate !== undefined) entry[key] = rate;
  }
  const starts = new Set<number>();
  for (const value of Object.values(fields)) if (value !== undefined && typeof value !== 'number') value.tiers.forEach((tier) => starts.add(tier.start));
  if (starts.size > 0) {
    entry.tiers = [...starts].sort((a, b) => a - b).map((start) => {
      const tier: PriceTier = { aboveInputTokens: start };
      for (const [key, value] of Object.entries(fields) as [keyof typeof fields, PriceValue][]) {
        const rate = rateAbove(value, start);
        if (rate !== undefined) tier[key] = rate;
      }
      return tier;
    });
  }
  return entry;
}
