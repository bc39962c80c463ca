import { Logger } from '@nestjs/common';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { validateConfig } from '../config/app-config';
import {
  catalogCandidates,
  costMicrosFor,
  loadPriceCatalog,
  parsePriceCatalog,
  PriceCatalogError,
  PricingService,
} from './pricing.service';
import { usdToMicros } from '../common/money';

describe(PricingService.name, () => {
  const dir = mkdtempSync(join(tmpdir(), 'price-catalog-'));
  const now = new Date('2026-01-15T12:00:00Z');
  let files = 0;
  const catalogFile = (content: unknown) => {
    const path = join(dir, `catalog-${files++}.json`);
    writeFileSync(path, typeof content === 'string' ? content : JSON.stringify(content));
    return path;
  };
  const serviceWith = (catalog?: unknown) =>
    new PricingService(validateConfig(catalog === undefined ? {} : { PRICE_CATALOG_PATH: catalogFile(catalog) }));

  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  describe('bundled catalog', () => {
    const pricing = serviceWith();

    it.each([
      ['gpt-4o', 1_000, 500, 1_000 * 2.5 + 500 * 10],
      ['gpt-4', 1_000, 500, 1_000 * 30 + 500 * 60],
      ['gpt-3.5-turbo', 1_000, 500, 1_000 * 0.5 + 500 * 1.5],
      ['openai/gpt-4o-mini', 1_000_000, 1_000_000, 150_000 + 600_000],
      ['openai/gpt-4o', 2_000, 1_000, 2_000 * 2.5 + 1_000 * 10],
    ])('prices %s: %d prompt + %d completion = %d micro-USD', (model, promptTokens, completionTokens, micros) => {
      expect(pricing.price(model, { promptTokens, completionTokens }, now)).toMatchObject({ costMicros: micros, costSource: 'catalog' });
    });

    it.each([
      ['text-embedding-3-small', 1_000_000, 20_000],
      ['openai/text-embedding-3-large', 1_000_000, 130_000],
      ['text-embedding-ada-002', 1_000_000, 100_000],
    ])('prices %s embeddings: %d tokens = %d micro-USD', (model, embeddingTokens, micros) => {
      expect(pricing.price(model, { promptTokens: 0, completionTokens: 0, embeddingTokens }, now)).toMatchObject({
        costMicros: micros,
        costSource: 'catalog',
      });
    });

    it.each(['gpt-4o-mini', 'openai/gpt-4o-mini', 'OpenAI/GPT-4o-Mini', 'gpt-4o-mini-2024-07-18', 'openai/gpt-4o-mini-2024-07-18'])(
      'finds gpt-4o-mini as %s',
      (model) => {
        expect(pricing.price(model, { promptTokens: 1_000, completionTokens: 0 }, now)).toMatchObject({
          costMicros: 150,
          catalogModel: 'gpt-4o-mini',
        });
      },
    );

    it('prices simulated usage at zero from the catalog', () => {
      expect(pricing.price('simulated', { promptTokens: 500, completionTokens: 500 }, now)).toEqual(
        expect.objectContaining({ costMicros: 0, costSource: 'catalog' }),
      );
    });

    it('rounds half-up once per record, not per part', () => {
      // 30 x 0.15 = 4.5 -> 5 (banker's rounding would give 4)
      expect(pricing.price('gpt-4o-mini', { promptTokens: 30, completionTokens: 0 }, now).costMicros).toBe(5);
      // 10 x 0.15 + 1 x 0.6 = 2.1 -> 2 (rounding each part would give 2 + 1 = 3)
      expect(pricing.price('gpt-4o-mini', { promptTokens: 10, completionTokens: 1 }, now).costMicros).toBe(2);
      // 3 x 0.15 = 0.45 -> 0
      expect(pricing.price('gpt-4o-mini', { promptTokens: 3, completionTokens: 0 }, now).costMicros).toBe(0);
    });

    it('prices cached input at the cached price, inside prompt tokens', () => {
      // 600 x 0.15 + 400 x 0.075 = 90 + 30
      expect(pricing.price('gpt-4o-mini', { promptTokens: 1_000, cachedTokens: 400, completionTokens: 0 }, now).costMicros).toBe(120);
      // No cached price for gpt-4: cached tokens cost the input price, never twice.
      expect(pricing.price('gpt-4', { promptTokens: 1_000, cachedTokens: 400, completionTokens: 0 }, now).costMicros).toBe(30_000);
    });

    it('does not double count reasoning tokens (they are part of completion tokens)', () => {
      expect(pricing.price('o4-mini', { promptTokens: 0, completionTokens: 1_000, reasoningTokens: 600 }, now).costMicros).toBe(4_400);
    });

    it('lets the provider-reported cost win over the catalog', () => {
      expect(pricing.price('gpt-4o', { promptTokens: 1_000, completionTokens: 500, costUsd: 0.0012 }, now)).toEqual({
        costMicros: 1_200,
        costSource: 'provider',
      });
      expect(pricing.price('gpt-4o', { promptTokens: 1_000, completionTokens: 500, costUsd: 0 }, now)).toEqual({
        costMicros: 0,
        costSource: 'provider',
      });
      expect(pricing.price('unknown/model', { promptTokens: 1, completionTokens: 1, costUsd: 0.000_000_5 }, now)).toEqual({
        costMicros: 1,
        costSource: 'provider',
      });
    });

    it('tries alternative names in order (reported model, then requested model)', () => {
      expect(pricing.price(['some-router/alias', 'openai/gpt-4o-mini'], { promptTokens: 1_000, completionTokens: 0 }, now)).toMatchObject({
        costMicros: 150,
        costSource: 'catalog',
      });
    });

    it('keeps unknown models as unpriced at zero cost and warns once per model', () => {
      const warn = jest.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
      try {
        const quote = pricing.price('mystery/model-x', { promptTokens: 10, completionTokens: 10 }, now);
        pricing.price('mystery/model-x', { promptTokens: 10, completionTokens: 10 }, now);
        pricing.price('mystery/model-y', { promptTokens: 10, completionTokens: 10 }, now);
        expect(quote).toEqual({ costMicros: 0, costSource: 'unpriced' });
        expect(warn).toHaveBeenCalledTimes(2);
        expect(warn.mock.calls[0][0]).toContain('mystery/model-x');
      } finally {
        warn.mockRestore();
      }
    });
  });

  describe('unpriced usage', () => {
    it('warns once per model per hour, with the count of unpriced calls so far', () => {
      const pricing = serviceWith();
      const warn = jest.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
      let clock = Date.parse('2026-01-15T12:00:00Z');
      const now = jest.spyOn(Date, 'now').mockImplementation(() => clock);
      try {
        for (let i = 0; i < 5; i++) pricing.price('acme/model-z', { promptTokens: 1, completionTokens: 1 }, new Date(clock));
        expect(warn).toHaveBeenCalledTimes(1);
        clock += 59 * 60_000;
        pricing.price('acme/model-z', { promptTokens: 1, completionTokens: 1 }, new Date(clock));
        expect(warn).toHaveBeenCalledTimes(1);
        clock += 60_000;
        pricing.price('acme/model-z', { promptTokens: 1, completionTokens: 1 }, new Date(clock));
        expect(warn).toHaveBeenCalledTimes(2);
        expect(warn.mock.calls[1][0]).toContain('"acme/model-z"');
        expect(warn.mock.calls[1][0]).toContain('7 unpriced call(s) so far');
        // Re-pricing asks quietly: neither counted nor warned.
        clock += 2 * 3_600_000;
        pricing.listPrice('acme/model-z', { promptTokens: 1, completionTokens: 1 }, new Date(clock), { quiet: true });
        expect(warn).toHaveBeenCalledTimes(2);
      } finally {
        warn.mockRestore();
        now.mockRestore();
      }
    });
  });

  describe('effective dates', () => {
    const pricing = serviceWith({
      models: {
        'vendor/x': [
          { effectiveFrom: '2024-06-01', inputPerMillion: 0.5, outputPerMillion: 1 },
          { effectiveFrom: '2024-01-01', inputPerMillion: 1, outputPerMillion: 2 },
        ],
      },
    });
    const usage = { promptTokens: 1_000, completionTokens: 1_000 };

    it('uses the latest entry in force at the time of the record', () => {
      expect(pricing.price('vendor/x', usage, new Date('2024-03-01T00:00:00Z'))).toMatchObject({ costMicros: 3_000, effectiveFrom: '2024-01-01' });
      expect(pricing.price('vendor/x', usage, new Date('2024-05-31T23:59:59.999Z'))).toMatchObject({ costMicros: 3_000 });
      expect(pricing.price('vendor/x', usage, new Date('2024-06-01T00:00:00Z'))).toMatchObject({ costMicros: 1_500, effectiveFrom: '2024-06-01' });
      expect(pricing.price('vendor/x', usage, new Date('2030-01-01T00:00:00Z'))).toMatchObject({ costMicros: 1_500 });
    });

    it('is unpriced before the first entry', () => {
      jest.spyOn(Logger.prototype, 'warn').mockImplementationOnce(() => undefined);
      expect(pricing.price('vendor/x', usage, new Date('2023-12-31T23:59:59Z'))).toEqual({ costMicros: 0, costSource: 'unpriced' });
    });
  });

  describe('arithmetic', () => {
    it('prices reasoning tokens at the reasoning price when the entry has one', () => {
      const entry = { effectiveFrom: '2025-01-01', inputPerMillion: 1, outputPerMillion: 4, reasoningPerMillion: 2 };
      // (1000 - 600) x 4 + 600 x 2
      expect(costMicrosFor(entry, { promptTokens: 0, completionTokens: 1_000, reasoningTokens: 600 })).toBe(2_800);
    });

    it('is exact for prices with six decimals and large counts', () => {
      const entry = { effectiveFrom: '2025-01-01', inputPerMillion: 0.000_001, outputPerMillion: 123.456_789 };
      expect(costMicrosFor(entry, { promptTokens: 1_500_000, completionTokens: 0 })).toBe(2); // 1.5 -> 2
      expect(costMicrosFor(entry, { promptTokens: 0, completionTokens: 10_000_000 })).toBe(1_234_567_890);
    });

    it('clamps cached and reasoning counts to their totals', () => {
      const entry = { effectiveFrom: '2025-01-01', inputPerMillion: 1, outputPerMillion: 1, cachedInputPerMillion: 0 };
      expect(costMicrosFor(entry, { promptTokens: 100, cachedTokens: 500, completionTokens: 0 })).toBe(0);
    });

    it.each([
      [0.0012, 1_200],
      [0.000_000_5, 1],
      [0.000_000_49, 0],
      [1.234_567_5, 1_234_568],
      [0.1 + 0.2, 300_000],
    ])('converts a provider cost of %d USD to %d micro-USD', (usd, micros) => {
      expect(usdToMicros(usd)).toBe(micros);
    });

    it('lists name candidates without and with the openai/ prefix and snapshot dates', () => {
      expect(catalogCandidates('openai/gpt-4o-2024-08-06')).toEqual(['openai/gpt-4o-2024-08-06', 'gpt-4o-2024-08-06', 'openai/gpt-4o', 'gpt-4o']);
      expect(catalogCandidates('gpt-4-0613')).toEqual(['gpt-4-0613', 'openai/gpt-4-0613', 'gpt-4', 'openai/gpt-4']);
      expect(catalogCandidates('anthropic/claude-3.5-sonnet')).toEqual(['anthropic/claude-3.5-sonnet']);
    });
  });

  describe('catalog validation', () => {
    const valid = { effectiveFrom: '2025-01-01', inputPerMillion: 1, outputPerMillion: 2 };

    it.each([
      [[], 'JSON object'],
      [{}, '"models" must be an object'],
      [{ models: {}, extra: 1 }, 'unknown top-level key "extra"'],
      [{ models: { m: [] } }, 'models["m"] must be a non-empty array'],
      [{ models: { m: [{ ...valid, effectiveFrom: '2025-13-01' }] } }, 'models["m"][0].effectiveFrom must be a date'],
      [{ models: { m: [{ ...valid, effectiveFrom: '1 Jan 2025' }] } }, 'effectiveFrom must be a date'],
      [{ models: { m: [{ ...valid, inputPerMillion: -1 }] } }, 'models["m"][0].inputPerMillion must be a non-negative number'],
      [{ models: { m: [{ ...valid, outputPerMillion: '2' }] } }, 'outputPerMillion'],
      [{ models: { m: [{ effectiveFrom: '2025-01-01', inputPerMillion: 1 }] } }, 'outputPerMillion'],
      [{ models: { m: [{ ...valid, cachedInputPerMillion: 0.000_000_1 }] } }, 'at most 6 decimals'],
      [{ models: { m: [{ ...valid, inputPerMilion: 1 }] } }, 'unknown field "inputPerMilion"'],
      [{ models: { m: [valid, { ...valid }] } }, 'two entries effective from 2025-01-01'],
      [{ models: { M: [valid], m: [valid] } }, 'listed twice'],
    ])('rejects %j naming the problem', (raw, problem) => {
      expect(() => parsePriceCatalog(raw, 'test.json')).toThrow(PriceCatalogError);
      expect(() => parsePriceCatalog(raw, 'test.json')).toThrow(problem);
    });

    it('accepts $-prefixed comment keys', () => {
      expect(parsePriceCatalog({ $comment: 'prices', models: { m: [valid] } }, 'test.json').get('m')).toEqual([valid]);
    });

    it('refuses to boot on a bad PRICE_CATALOG_PATH file, naming the file and the problem', () => {
      const bad = catalogFile({ models: { 'gpt-4o': [{ ...valid, inputPerMillion: 'five' }] } });
      expect(() => new PricingService(validateConfig({ PRICE_CATALOG_PATH: bad }))).toThrow(
        `Invalid price catalog ${bad}: models["gpt-4o"][0].inputPerMillion must be a non-negative number`,
      );
      expect(() => loadPriceCatalog(catalogFile('{ not json'))).toThrow('not valid JSON');
      expect(() => loadPriceCatalog(join(dir, 'missing.json'))).toThrow('Cannot read price catalog');
    });

    it('replaces the bundled catalog with the configured one', () => {
      const pricing = serviceWith({ models: { 'gpt-4o': [{ effectiveFrom: '2024-10-02', inputPerMillion: 2.5, outputPerMillion: 10 }] } });
      expect(pricing.price('gpt-4o', { promptTokens: 1_000, completionTokens: 1_000 }, now).costMicros).toBe(12_500);
      expect(pricing.models()).toEqual(['gpt-4o']);
    });
  });
});
