import { Injectable, Logger, OnApplicationBootstrap, OnApplicationShutdown } from '@nestjs/common';
import { InjectModel } from '@nestjs/mongoose';
import { Model } from 'mongoose';
import { Clock } from '../common/clock';
import { AppConfig } from '../config/app-config';
import { UsageLimitsService } from '../limits/usage-limits.service';
import { MetricsService } from '../metrics/metrics.service';
import type { OperationType } from '../token-tracking/usage-record';
import { AlertWebhookSender } from './alert-webhook.sender';
import { AlertTotals, crossedThresholds, CrossedThreshold, parseBudgetAlerts, ThresholdRule } from './budget-alert-config';
import { AlertStatus, BudgetAlert } from './budget-alert.schema';
import { highUsageThreshold, parseExpectedTokens } from './high-usage';

/** One new usage event, with the usage of its periods after it (from the aggregate upserts). */
export interface AlertInput {
  recordId: string;
  userId?: string;
  operation: OperationType;
  model: string;
  totalTokens: number;
  occurredAt: Date;
  day: string;
  month: string;
  totals: AlertTotals;
}

const DUPLICATE_KEY = 11000;
const SWEEP_INTERVAL_MS = 60_000;
const SWEEP_BATCH = 20;
/** Ids of alerts known to exist, so a scope over its threshold does not try an insert per event. */
const CLAIMED_CACHE_SIZE = 10_000;

/**
 * Budget alerts (BUDGET_ALERTS thresholds, once per threshold and period, to the log and
 * ALERT_WEBHOOK_URLS) and high-usage detection. Runs after an event is recorded, off the request path.
 */
@Injectable()
export class AlertsService implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger(AlertsService.name);
  private readonly rules: ThresholdRule[];
  private readonly needsLimits: boolean;
  private readonly expectedTokens: Record<OperationType, number>;
  private readonly claimed = new Set<string>();
  private readonly deliveries = new Set<Promise<unknown>>();
  private sweepTimer?: NodeJS.Timeout;

  constructor(
    @InjectModel(BudgetAlert.name) private readonly alerts: Model<BudgetAlert>,
    private readonly config: AppConfig,
    private readonly limits: UsageLimitsService,
    private readonly metrics: MetricsService,
    private readonly webhooks: AlertWebhookSender,
    private readonly clock: Clock,
  ) {
    this.rules = parseBudgetAlerts(config.BUDGET_ALERTS);
    this.needsLimits = this.rules.some((rule) => rule.kind === 'percent_of_limit');
    this.expectedTokens = parseExpectedTokens(config.HIGH_USAGE_EXPECTED_TOKENS);
  }

  onApplicationBootstrap(): void {
    if (this.webhooks.urls.length === 0) return;
    this.sweepTimer = setInterval(() => void this.sweep().catch((error: Error) => this.logger.warn(`Alert redelivery sweep failed: ${error.message}`)), SWEEP_INTERVAL_MS).unref();
  }

  async onApplicationShutdown(): Promise<void> {
    clearInterval(this.sweepTimer);
    // Retries stop at once; undelivered alerts stay pending for the next sweep (here or in another instance).
    this.webhooks.abort();
    await Promise.allSettled([...this.deliveries]);
  }

  /** Whether evaluate() reads input.totals: callers may skip reading them otherwise. */
  get needsTotals(): boolean {
    return this.rules.length > 0;
  }

  async evaluate(input: AlertInput): Promise<void> {
    this.detectHighUsage(input);
    if (this.rules.length === 0) return;
    const limits = this.needsLimits && input.userId ? (await this.limits.planOf(input.userId)).limits : undefined;
    for (const crossed of crossedThresholds(this.rules, input.userId, input.totals, limits)) {
      await this.raise(crossed, input);
    }
  }

  /** Redelivers alerts left pending by a crash or shutdown once their lease has run out. */
  async sweep(): Promise<number> {
    let redelivered = 0;
    for (let i = 0; i < SWEEP_BATCH; i += 1) {
      const now = this.clock.now();
      const alert = await this.alerts.collection.findOneAndUpdate(
        { status: 'pending', leaseUntil: { $lt: new Date(now) } },
        { $set: { leaseUntil: new Date(now + this.leaseMs) } },
        { returnDocument: 'after' },
      );
      if (!alert) break;
      redelivered += 1;
      await this.deliver(String(alert._id), alert.payload as Record<string, unknown>);
    }
    return redelivered;
  }

  private detectHighUsage(input: AlertInput): void {
    const threshold = highUsageThreshold(this.expectedTokens, this.config.HIGH_USAGE_MULTIPLIER, input.operation);
    if (threshold === null || input.totalTokens <= threshold) return;
    this.metrics.countHighUsage(input.operation);
    this.logger.warn(
      `High usage: ${input.operation} on ${input.model} used ${input.totalTokens} tokens, over ${this.config.HIGH_USAGE_MULTIPLIER}x the ` +
        `${this.expectedTokens[input.operation]} expected (record ${input.recordId}${input.userId ? `, user ${input.userId}` : ''})`,
    );
  }

  private async raise(crossed: CrossedThreshold, input: AlertInput): Promise<void> {
    const { rule } = crossed;
    const periodKey = rule.period === 'day' ? input.day : input.month;
    const subject = rule.scope === 'global' ? '*' : input.userId!;
    const level = rule.kind === 'absolute' ? `abs:${rule.amount}` : `pct:${rule.percent}`;
    const id = ['budget', rule.scope, subject, rule.metric, rule.period, periodKey, level].join('|');
    if (this.claimed.has(id)) return;

    const payload = alertPayload(id, crossed, input, periodKey);
    const status: AlertStatus = this.webhooks.urls.length > 0 ? 'pending' : 'logged';
    const now = new Date(this.clock.now());
    try {
      await this.alerts.collection.insertOne({
        _id: id as never,
        status,
        payload,
        deliveries: [],
        createdAt: now,
        ...(status === 'pending' ? { leaseUntil: new Date(now.getTime() + this.leaseMs) } : {}),
      });
    } catch (error) {
      if ((error as { code?: unknown }).code !== DUPLICATE_KEY) throw error;
      this.remember(id);
      return;
    }
    this.remember(id);
    this.metrics.countBudgetAlert(rule.scope, `${rule.period}_${rule.metric}`);
    this.logger.warn(`Budget alert: ${payload.message}`);
    if (status === 'pending') {
      const delivery = this.deliver(id, payload).catch((error: Error) => this.logger.warn(`Delivering alert ${id} failed: ${error.message}`));
      this.deliveries.add(delivery);
      void delivery.finally(() => this.deliveries.delete(delivery));
    }
  }

  private async deliver(id: string, payload: Record<string, unknown>): Promise<void> {
    const result = await this.webhooks.deliver(id, JSON.stringify(payload));
    const status: AlertStatus = result.outcome === 'interrupted' ? 'pending' : result.outcome;
    await this.alerts.collection.updateOne(
      { _id: id as never },
      {
        $set: { status, deliveries: result.deliveries, updatedAt: new Date(this.clock.now()), ...(status === 'pending' ? { leaseUntil: new Date(0) } : {}) },
        ...(status === 'pending' ? {} : { $unset: { leaseUntil: '' } }),
      },
    );
  }

  private get leaseMs(): number {
    return this.webhooks.worstCaseMs + 60_000;
  }

  private remember(id: string): void {
    if (this.claimed.size >= CLAIMED_CACHE_SIZE) this.claimed.clear();
    this.claimed.add(id);
  }
}

function alertPayload(id: string, crossed: CrossedThreshold, input: AlertInput, periodKey: string): Record<string, unknown> {
  const { rule } = crossed;
  const inUnits = (value: number) => (rule.metric === 'cost_usd' ? value / 1e6 : value);
  const who = rule.scope === 'global' ? 'All users' : `User ${input.userId}`;
  const what = rule.metric === 'cost_usd' ? `cost $${inUnits(crossed.observed).toFixed(6)}` : `${crossed.observed} tokens`;
  const threshold =
    rule.kind === 'absolute'
      ? rule.metric === 'cost_usd' ? `$${inUnits(crossed.threshold)}` : `${crossed.threshold} tokens`
      : `${rule.percent}% of the ${rule.metric === 'cost_usd' ? `$${inUnits(crossed.limit!)} monthly cost` : `${crossed.limit} daily token`} limit`;
  return {
    id,
    type: 'budget_threshold_crossed',
    scope: rule.scope,
    userId: rule.scope === 'user' ? input.userId : null,
    metric: rule.metric,
    period: rule.period,
    periodKey,
    thresholdKind: rule.kind,
    threshold: inUnits(crossed.threshold),
    ...(rule.kind === 'percent_of_limit' ? { percent: rule.percent, limit: inUnits(crossed.limit!) } : {}),
    value: inUnits(crossed.observed),
    recordId: input.recordId,
    occurredAt: input.occurredAt.toISOString(),
    message: `${who}: ${rule.period === 'day' ? 'daily' : 'monthly'} ${what} for ${periodKey} reached ${threshold}`,
  };
}
