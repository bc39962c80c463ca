import { createHmac } from 'node:crypto';
import { isRetryableStatus, parseWebhookUrls, retryDelayMs, signWebhook } from './alert-webhook';

describe('alert webhooks', () => {
  it('signs "<timestamp>.<raw body>" with HMAC-SHA256', () => {
    const body = '{"id":"a"}';
    const expected = createHmac('sha256', 'secret-secret-secret').update(`1700000000.${body}`).digest('hex');
    expect(signWebhook('secret-secret-secret', 1700000000, body)).toBe(`sha256=${expected}`);
    expect(signWebhook('secret-secret-secret', 1700000001, body)).not.toBe(`sha256=${expected}`);
  });

  it('backs off exponentially with bounded jitter', () => {
    expect([2, 3, 4, 5].map((attempt) => retryDelayMs(100, attempt, () => 0))).toEqual([100, 200, 400, 800]);
    expect(retryDelayMs(100, 2, () => 1)).toBe(110);
  });

  it.each([
    [500, true],
    [503, true],
    [429, true],
    [408, true],
    [400, false],
    [404, false],
  ])('retries HTTP %p: %p', (status, retryable) => {
    expect(isRetryableStatus(status)).toBe(retryable);
  });

  it('parses the URL list', () => {
    expect(parseWebhookUrls(' http://127.0.0.1:9/a , https://example.com/b ')).toEqual(['http://127.0.0.1:9/a', 'https://example.com/b']);
    expect(parseWebhookUrls(undefined)).toEqual([]);
    expect(() => parseWebhookUrls('http://')).toThrow('invalid URL');
  });
});
