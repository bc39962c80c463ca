import { validateConfig } from '../config/app-config';
import { PricedUsage, PricingService } from './pricing.service';

/**
 * Published list prices, USD per 1M tokens, as each provider (or OpenRouter) publishes them.
 * Expected figures are worked out here from these numbers, never read back from the code.
 */
interface Published {
  input: number;
  output: number;
  cacheRead?: number;
  cacheWrite?: number;
  reasoning?: number;
}

/** The published arithmetic: every token kind at its rate, cached/written parts out of the input, reasoning out of the output. */
function published(rates: Published, usage: PricedUsage): number {
  const cached = usage.cachedTokens ?? 0;
  const written = usage.cacheWriteTokens ?? 0;
  const reasoning = usage.reasoningTokens ?? 0;
  const usd =
    ((usage.promptTokens - cached - written) * rates.input +
      cached * (rates.cacheRead ?? rates.input) +
      written * (rates.cacheWrite ?? rates.input) +
      (usage.completionTokens - reasoning) * rates.output +
      reasoning * (rates.reasoning ?? rates.output) +
      (usage.embeddingTokens ?? 0) * rates.input) /
    1_000_000;
  // Each usage below is chosen so the exact figure is a whole number of micro-dollars.
  return Math.round(usd * 1_000_000);
}

const VENUES = {
  openrouter: { AI_PROVIDER: 'openrouter', OPENROUTER_API_KEY: 'sk-or-test' },
  openai: { AI_PROVIDER: 'openai', AI_API_KEY: 'sk-test' },
  anthropic: { AI_PROVIDER: 'compatible', AI_BASE_URL: 'https://api.anthropic.com/v1/' },
  google: { AI_PROVIDER: 'compatible', AI_BASE_URL: 'https://generativelanguage.googleapis.com/v1beta/openai/' },
  deepseek: { AI_PROVIDER: 'compatible', AI_BASE_URL: 'https://api.deepseek.com/v1' },
  mistral: { AI_PROVIDER: 'compatible', AI_BASE_URL: 'https://api.mistral.ai/v1' },
  groq: { AI_PROVIDER: 'compatible', AI_BASE_URL: 'https://api.groq.com/openai/v1' },
} as const;
type Venue = keyof typeof VENUES;

const plain = { promptTokens: 20_000, completionTokens: 4_000 };
const cached = { promptTokens: 100_000, cachedTokens: 60_000, completionTokens: 2_000 };
const cacheWrite = { promptTokens: 50_000, cachedTokens: 10_000, cacheWriteTokens: 30_000, completionTokens: 1_000 };
const reasoning = { promptTokens: 10_000, completionTokens: 20_000, reasoningTokens: 15_000 };
const longContext = { promptTokens: 300_000, cachedTokens: 100_000, completionTokens: 8_000 };
const embedding = { promptTokens: 0, completionTokens: 0, embeddingTokens: 1_000_000 };

const JUNE_2024 = '2024-06-15T12:00:00Z';
const NOW = '2026-01-15T12:00:00Z';

type Row = [venue: Venue, model: string, at: string, usage: PricedUsage, rates: Published, source: 'catalog' | 'genai-prices'];

const ROWS: Row[] = [
  // OpenAI, our dated catalogue
  ['openai', 'gpt-4o', JUNE_2024, plain, { input: 5, output: 15 }, 'catalog'],
  ['openai', 'gpt-4o', NOW, cached, { input: 2.5, output: 10, cacheRead: 1.25 }, 'catalog'],
  ['openai', 'gpt-4o-2024-05-13', NOW, plain, { input: 5, output: 15 }, 'catalog'],
  ['openai', 'gpt-4o-2024-08-06', '2024-09-01T00:00:00Z', plain, { input: 2.5, output: 10 }, 'catalog'],
  ['openai', 'gpt-4o-mini-2024-07-18', NOW, cached, { input: 0.15, output: 0.6, cacheRead: 0.075 }, 'catalog'],
  ['openai', 'gpt-4', NOW, plain, { input: 30, output: 60 }, 'catalog'],
  ['openai', 'gpt-3.5-turbo', '2023-04-01T00:00:00Z', plain, { input: 2, output: 2 }, 'catalog'],
  ['openai', 'gpt-3.5-turbo', '2023-09-01T00:00:00Z', plain, { input: 1.5, output: 2 }, 'catalog'],
  ['openai', 'gpt-3.5-turbo', JUNE_2024, plain, { input: 0.5, output: 1.5 }, 'catalog'],
  ['openai', 'o4-mini', NOW, reasoning, { input: 1.1, output: 4.4 }, 'catalog'],
  ['openai', 'text-embedding-3-small', NOW, embedding, { input: 0.02, output: 0 }, 'catalog'],
  ['openai', 'text-embedding-ada-002', '2023-01-10T00:00:00Z', embedding, { input: 0.4, output: 0 }, 'catalog'],
  ['openai', 'text-embedding-ada-002', NOW, embedding, { input: 0.1, output: 0 }, 'catalog'],
  // OpenAI, genai-prices (incl. its dated o3 price cut of 2025-06-10)
  ['openai', 'o1', NOW, { ...reasoning, cachedTokens: 4_000 }, { input: 15, output: 60, cacheRead: 7.5 }, 'genai-prices'],
  ['openai', 'o3', '2025-05-01T00:00:00Z', reasoning, { input: 10, output: 40 }, 'genai-prices'],
  ['openai', 'o3', NOW, reasoning, { input: 2, output: 8 }, 'genai-prices'],
  ['openai', 'gpt-4.1-nano', NOW, cached, { input: 0.1, output: 0.4, cacheRead: 0.025 }, 'genai-prices'],
  ['openai', 'text-embedding-3-large', NOW, embedding, { input: 0.13, output: 0 }, 'catalog'],
  // OpenRouter ids
  ['openrouter', 'openai/gpt-4o', JUNE_2024, plain, { input: 5, output: 15 }, 'catalog'],
  ['openrouter', 'openai/gpt-4o', NOW, plain, { input: 2.5, output: 10 }, 'catalog'],
  ['openrouter', 'anthropic/claude-3.5-sonnet', NOW, plain, { input: 3, output: 15 }, 'genai-prices'],
  // OpenRouter passes Anthropic's own prompt-caching rates through.
  ['openrouter', 'anthropic/claude-3.7-sonnet', NOW, cacheWrite, { input: 3, output: 15, cacheRead: 0.3, cacheWrite: 3.75 }, 'genai-prices'],
  ['openrouter', 'anthropic/claude-sonnet-4', NOW, cacheWrite, { input: 3, output: 15, cacheRead: 0.3, cacheWrite: 3.75 }, 'genai-prices'],
  ['openrouter', 'google/gemini-2.5-pro', NOW, cacheWrite, { input: 1.25, output: 10, cacheRead: 0.31, cacheWrite: 1.625 }, 'genai-prices'],
  ['openrouter', 'google/gemini-1.5-pro', NOW, longContext, { input: 2.5, output: 10 }, 'genai-prices'],
  ['openrouter', 'meta-llama/llama-3.1-8b-instruct', NOW, plain, { input: 0.02, output: 0.03 }, 'genai-prices'],
  ['openrouter', 'meta-llama/llama-3.3-70b-instruct', NOW, plain, { input: 0.05, output: 0.24 }, 'genai-prices'],
  ['openrouter', 'meta-llama/llama-3.1-405b-instruct', NOW, plain, { input: 0.8, output: 0.8 }, 'genai-prices'],
  ['openrouter', 'deepseek/deepseek-chat', NOW, plain, { input: 0.38, output: 0.89 }, 'genai-prices'],
  ['openrouter', 'deepseek/deepseek-r1', NOW, reasoning, { input: 0.45, output: 2.15 }, 'genai-prices'],
  ['openrouter', 'mistralai/mistral-large', NOW, plain, { input: 2, output: 6 }, 'genai-prices'],
  ['openrouter', 'mistralai/mixtral-8x7b-instruct', NOW, plain, { input: 0.24, output: 0.24 }, 'genai-prices'],
  ['openrouter', 'mistralai/mistral-nemo', NOW, plain, { input: 0.01, output: 0.019 }, 'genai-prices'],
  ['openrouter', 'qwen/qwen-2.5-72b-instruct', NOW, plain, { input: 0.12, output: 0.39 }, 'genai-prices'],
  ['openrouter', 'openai/o3-mini', NOW, { ...reasoning, cachedTokens: 2_000 }, { input: 1.1, output: 4.4, cacheRead: 0.55 }, 'catalog'],
  // Anthropic's own ids
  ['anthropic', 'claude-3-5-sonnet-20241022', NOW, cacheWrite, { input: 3, output: 15, cacheRead: 0.3, cacheWrite: 3.75 }, 'genai-prices'],
  ['anthropic', 'claude-3-5-haiku-20241022', NOW, cacheWrite, { input: 0.8, output: 4, cacheRead: 0.08, cacheWrite: 1 }, 'genai-prices'],
  ['anthropic', 'claude-3-opus-20240229', NOW, plain, { input: 15, output: 75 }, 'genai-prices'],
  ['anthropic', 'claude-sonnet-4-5-20250929', NOW, cacheWrite, { input: 3, output: 15, cacheRead: 0.3, cacheWrite: 3.75 }, 'genai-prices'],
  // Above 200k input tokens the whole call moves to the long-context rates.
  ['anthropic', 'claude-sonnet-4-5-20250929', NOW, longContext, { input: 6, output: 22.5, cacheRead: 0.6 }, 'genai-prices'],
  // Google's own ids, tiered above 128k / 200k input tokens
  ['google', 'gemini-1.5-pro', NOW, plain, { input: 1.25, output: 5 }, 'genai-prices'],
  ['google', 'gemini-1.5-pro', NOW, longContext, { input: 2.5, output: 10 }, 'genai-prices'],
  ['google', 'gemini-2.5-pro', NOW, cached, { input: 1.25, output: 10, cacheRead: 0.125 }, 'genai-prices'],
  ['google', 'gemini-2.5-pro', NOW, longContext, { input: 2.5, output: 15, cacheRead: 0.25 }, 'genai-prices'],
  ['google', 'gemini-1.5-flash', NOW, cached, { input: 0.075, output: 0.3, cacheRead: 0.01875 }, 'genai-prices'],
  ['google', 'gemini-2.0-flash', NOW, cached, { input: 0.1, output: 0.4, cacheRead: 0.025 }, 'genai-prices'],
  // DeepSeek's own API: standard hours, and the off-peak discount (16:30-00:30 UTC)
  ['deepseek', 'deepseek-chat', '2025-06-01T10:00:00Z', cached, { input: 0.27, output: 1.1, cacheRead: 0.07 }, 'genai-prices'],
  ['deepseek', 'deepseek-chat', '2025-06-01T20:00:00Z', cached, { input: 0.135, output: 0.55, cacheRead: 0.035 }, 'genai-prices'],
  ['deepseek', 'deepseek-reasoner', '2025-06-01T10:00:00Z', reasoning, { input: 0.55, output: 2.19 }, 'genai-prices'],
  // Mistral's own ids
  ['mistral', 'mistral-large-latest', NOW, plain, { input: 2, output: 6 }, 'genai-prices'],
  ['mistral', 'codestral-latest', NOW, plain, { input: 0.3, output: 0.9 }, 'genai-prices'],
  // Meta's Llama on Groq
  ['groq', 'llama-3.3-70b-versatile', NOW, plain, { input: 0.59, output: 0.79 }, 'genai-prices'],
  ['groq', 'llama-3.1-8b-instant', NOW, plain, { input: 0.05, output: 0.08 }, 'genai-prices'],
];

describe(`${PricingService.name} price table`, () => {
  const services = new Map<Venue, PricingService>();
  const serviceFor = (venue: Venue) => {
    if (!services.has(venue)) services.set(venue, new PricingService(validateConfig({ ...VENUES[venue] })));
    return services.get(venue)!;
  };

  it('covers at least 25 model ids across at least 5 providers', () => {
    expect(new Set(ROWS.map((row) => row[1])).size).toBeGreaterThanOrEqual(25);
    const vendors = new Set(ROWS.map(([venue, model]) => (venue === 'openrouter' ? model.split('/')[0] : venue)));
    expect(vendors.size).toBeGreaterThanOrEqual(5);
  });

  it.each(ROWS)('%s %s at %s with %j at %j', (venue, model, at, usage, rates, source) => {
    const quote = serviceFor(venue).price(model, usage, new Date(at));
    expect(quote.costSource).toBe(source);
    expect(quote.costMicros).toBe(published(rates, usage));
    expect(quote.priceVersion).toEqual(expect.any(String));
    expect(quote.priceEntry).toEqual(expect.any(String));
  });

  it('names the dated catalogue entry that priced a gpt-4o call of June 2024 and one of today', () => {
    const pricing = serviceFor('openai');
    expect(pricing.price('gpt-4o', plain, new Date(JUNE_2024))).toMatchObject({ priceEntry: 'gpt-4o@2024-05-13', priceVersion: `catalog ${pricing.catalogVersion}` });
    expect(pricing.price('gpt-4o', plain, new Date(NOW))).toMatchObject({ priceEntry: 'gpt-4o@2024-10-02' });
  });

  it('names the genai-prices entry and data version', () => {
    expect(serviceFor('anthropic').price('claude-3-5-sonnet-20241022', plain, new Date(NOW))).toMatchObject({
      costSource: 'genai-prices',
      priceVersion: expect.stringMatching(/^genai-prices@\d+\.\d+\.\d+$/),
      priceEntry: 'anthropic:claude-3-5-sonnet',
    });
  });

  it("names the vendor entry whose cache rates an OpenRouter listing borrowed, and borrows none when the prices differ", () => {
    expect(serviceFor('openrouter').price('anthropic/claude-3.7-sonnet', cacheWrite, new Date(NOW)).priceEntry).toBe(
      'openrouter:anthropic/claude-3.7-sonnet (cache rates anthropic:claude-3-7-sonnet-latest)',
    );
    // OpenRouter's deepseek-chat (0.38/0.89) is not DeepSeek's own price: cached tokens stay at the input price.
    expect(serviceFor('openrouter').price('deepseek/deepseek-chat', cached, new Date(NOW)).costMicros).toBe(published({ input: 0.38, output: 0.89 }, cached));
  });

  it('lets an OpenRouter-reported cost win over every price list', () => {
    expect(serviceFor('openrouter').price('anthropic/claude-3.5-sonnet', { ...plain, costUsd: 0.123_456 }, new Date(NOW))).toEqual({
      costMicros: 123_456,
      costSource: 'provider',
    });
  });

  it('leaves a model no list knows unpriced, and prices nothing from genai-prices when turned off', () => {
    expect(serviceFor('openrouter').listPrice('acme/private-model-1', plain, new Date(NOW), { quiet: true })).toEqual({ costMicros: 0, costSource: 'unpriced' });
    const offline = new PricingService(validateConfig({ ...VENUES.anthropic, PRICES_GENAI_FALLBACK: 'false' }));
    expect(offline.listPrice('claude-3-5-sonnet-20241022', plain, new Date(NOW), { quiet: true }).costSource).toBe('unpriced');
  });
});
