import { createHmac } from 'node:crypto';

export const SIGNATURE_HEADER = 'x-token-ledger-signature';
export const TIMESTAMP_HEADER = 'x-token-ledger-timestamp';
export const EVENT_ID_HEADER = 'x-token-ledger-event-id';

/**
 * `sha256=` + hex HMAC-SHA256 of `<timestamp>.<raw body>`. Signing the timestamp with the body
 * lets a receiver reject replays of an old delivery (compare the timestamp with its clock).
 */
export function signWebhook(secret: string, timestamp: number, body: string): string {
  return `sha256=${createHmac('sha256', secret).update(`${timestamp}.${body}`, 'utf8').digest('hex')}`;
}

/** Delay before attempt `attempt` (2, 3, ...): base, 2 x base, 4 x base ... plus up to 10 % jitter. */
export function retryDelayMs(baseMs: number, attempt: number, random = Math.random): number {
  const delay = baseMs * 2 ** (attempt - 2);
  return Math.round(delay + delay * 0.1 * random());
}

/** Network errors, timeouts, 408, 429 and 5xx are worth retrying; other 4xx answers will not change. */
export function isRetryableStatus(status: number): boolean {
  return status === 408 || status === 429 || status >= 500;
}

export function parseWebhookUrls(list: string | undefined): string[] {
  if (!list) return [];
  return list
    .split(',')
    .map((url) => url.trim())
    .filter((url) => url.length > 0)
    .map((url) => {
      try {
        return new URL(url).toString();
      } catch {
        throw new Error(`ALERT_WEBHOOK_URLS contains an invalid URL: ${url}`);
      }
    });
}
