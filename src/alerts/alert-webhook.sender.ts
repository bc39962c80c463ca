import { Injectable, Logger, OnApplicationShutdown } from '@nestjs/common';
import { AppConfig } from '../config/app-config';
import { MetricsService } from '../metrics/metrics.service';
import { EVENT_ID_HEADER, isRetryableStatus, parseWebhookUrls, retryDelayMs, SIGNATURE_HEADER, signWebhook, TIMESTAMP_HEADER } from './alert-webhook';
import type { WebhookDelivery } from './budget-alert.schema';

export interface DeliveryResult {
  /** delivered: every URL answered 2xx; failed: some URL gave up; interrupted: stopped by shutdown. */
  outcome: 'delivered' | 'failed' | 'interrupted';
  deliveries: WebhookDelivery[];
}

/** POSTs alert events to ALERT_WEBHOOK_URLS: signed, retried with exponential backoff. */
@Injectable()
export class AlertWebhookSender implements OnApplicationShutdown {
  private readonly logger = new Logger(AlertWebhookSender.name);
  readonly urls: string[];
  private readonly shutdown = new AbortController();

  constructor(
    private readonly config: AppConfig,
    private readonly metrics: MetricsService,
  ) {
    this.urls = parseWebhookUrls(config.ALERT_WEBHOOK_URLS);
    if (this.urls.length > 0 && !config.ALERT_WEBHOOK_SECRET) {
      this.logger.warn('ALERT_WEBHOOK_URLS is set without ALERT_WEBHOOK_SECRET: alert webhooks are sent unsigned');
    }
  }

  onApplicationShutdown(): void {
    this.abort();
  }

  /** Stops every delivery between attempts; what was not delivered stays pending for the next sweep. */
  abort(): void {
    this.shutdown.abort();
  }

  /** The longest one delivery can take, for leases. */
  get worstCaseMs(): number {
    const { ALERT_WEBHOOK_MAX_ATTEMPTS: attempts, ALERT_WEBHOOK_RETRY_BASE_MS: base, ALERT_WEBHOOK_TIMEOUT_MS: timeout } = this.config;
    return attempts * timeout + base * 1.1 * (2 ** Math.max(0, attempts - 1) - 1);
  }

  async deliver(eventId: string, body: string): Promise<DeliveryResult> {
    const deliveries = await Promise.all(this.urls.map((url) => this.deliverTo(url, eventId, body)));
    const interrupted = this.shutdown.signal.aborted && deliveries.some((delivery) => !delivery.deliveredAt);
    const outcome = interrupted ? 'interrupted' : deliveries.every((delivery) => delivery.deliveredAt) ? 'delivered' : 'failed';
    return { outcome, deliveries };
  }

  private async deliverTo(url: string, eventId: string, body: string): Promise<WebhookDelivery> {
    const maxAttempts = this.config.ALERT_WEBHOOK_MAX_ATTEMPTS;
    const delivery: WebhookDelivery = { url, attempts: 0 };
    for (let attempt = 1; attempt <= maxAttempts && !this.shutdown.signal.aborted; attempt += 1) {
      if (attempt > 1) {
        this.metrics.countWebhookDelivery('retried');
        await sleep(retryDelayMs(this.config.ALERT_WEBHOOK_RETRY_BASE_MS, attempt), this.shutdown.signal);
        if (this.shutdown.signal.aborted) break;
      }
      delivery.attempts = attempt;
      const timestamp = Math.floor(Date.now() / 1000);
      const headers: Record<string, string> = {
        'content-type': 'application/json',
        'user-agent': 'token-ledger-alerts',
        [EVENT_ID_HEADER]: eventId,
        [TIMESTAMP_HEADER]: String(timestamp),
      };
      if (this.config.ALERT_WEBHOOK_SECRET) headers[SIGNATURE_HEADER] = signWebhook(this.config.ALERT_WEBHOOK_SECRET, timestamp, body);
      try {
        const response = await fetch(url, {
          method: 'POST',
          headers,
          body,
          // A redirect is an answer to act on, not to follow with the signed payload.
          redirect: 'manual',
          signal: AbortSignal.any([AbortSignal.timeout(this.config.ALERT_WEBHOOK_TIMEOUT_MS), this.shutdown.signal]),
        });
        await response.body?.cancel().catch(() => undefined);
        if (response.ok) {
          delivery.deliveredAt = new Date();
          delete delivery.lastError;
          this.metrics.countWebhookDelivery('delivered');
          return delivery;
        }
        delivery.lastError = `HTTP ${response.status}`;
        if (!isRetryableStatus(response.status)) break;
      } catch (error) {
        delivery.lastError = (error as Error).name === 'TimeoutError' ? 'timed out' : (error as Error).message;
      }
    }
    if (!this.shutdown.signal.aborted) {
      this.metrics.countWebhookDelivery('failed');
      this.logger.warn(`Alert ${eventId} could not be delivered to ${redactUrl(url)} after ${delivery.attempts} attempt(s): ${delivery.lastError}`);
    }
    return delivery;
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}

/** Webhook URLs often carry a token in their path or query: log the origin only. */
function redactUrl(url: string): string {
  try {
    return new URL(url).origin;
  } catch {
    return '(invalid url)';
  }
}
