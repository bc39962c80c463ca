import { Logger } from '@nestjs/common';
import { createServer, Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { validateConfig } from '../config/app-config';
import { PricingService } from './pricing.service';

/** PRICES_AUTO_UPDATE against a loopback mirror of the genai-prices data file (this file's module registry only). */
describe('genai-prices auto-update (PRICES_AUTO_UPDATE)', () => {
  let server: Server;
  let url: string;
  let requests = 0;
  let body = '';

  beforeAll(async () => {
    server = createServer((_request, response) => {
      requests += 1;
      response.writeHead(200, { 'content-type': 'application/json' }).end(body);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/data.json`;
  });

  afterAll(async () => {
    await new Promise((resolve) => server.close(resolve));
  });

  const usage = { promptTokens: 10_000, completionTokens: 1_000 };
  const venue = { AI_PROVIDER: 'openrouter', OPENROUTER_API_KEY: 'sk-or-test' };

  it('fetches nothing unless turned on', () => {
    const pricing = new PricingService(validateConfig({ ...venue, PRICES_AUTO_UPDATE_URL: url }));
    expect(pricing.price('anthropic/claude-3.5-sonnet', usage, new Date()).priceVersion).toMatch(/^genai-prices@\d/);
    expect(requests).toBe(0);
  });

  it('prices from the fetched data once it is in use, and names it', async () => {
    body = JSON.stringify([
      {
        id: 'openrouter',
        name: 'OpenRouter',
        api_pattern: 'https://openrouter\\.ai',
        models: [{ id: 'acme/brand-new', match: { equals: 'acme/brand-new' }, prices: { input_mtok: 1, output_mtok: 3 } }],
      },
    ]);
    const pricing = new PricingService(validateConfig({ ...venue, PRICES_AUTO_UPDATE: 'true', PRICES_AUTO_UPDATE_URL: url }));
    try {
      await pricing.pricesUpdated();
      expect(requests).toBe(1);
      // 10k x 1 + 1k x 3
      expect(pricing.price('acme/brand-new', usage, new Date())).toMatchObject({
        costMicros: 13_000,
        costSource: 'genai-prices',
        priceVersion: expect.stringMatching(/^genai-prices@remote:\d{4}-/),
        priceEntry: 'openrouter:acme/brand-new',
      });
    } finally {
      pricing.onModuleDestroy();
    }
  });

  it('keeps the data in use when a fetch fails, and says so in the log', async () => {
    body = '{ not json';
    const warn = jest.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    const pricing = new PricingService(validateConfig({ ...venue, PRICES_AUTO_UPDATE: 'true', PRICES_AUTO_UPDATE_URL: url }));
    try {
      await pricing.pricesUpdated();
      expect(warn).toHaveBeenCalledWith(expect.stringContaining(`Fetching genai-prices data from ${url} failed`));
      expect(pricing.price('acme/brand-new', usage, new Date()).costMicros).toBe(13_000);
    } finally {
      pricing.onModuleDestroy();
      warn.mockRestore();
    }
  });
});
