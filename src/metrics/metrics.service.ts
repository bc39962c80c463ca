import { Injectable, OnModuleInit } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import { InjectConnection } from '@nestjs/mongoose';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { Connection } from 'mongoose';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import { RedisService } from '../redis/redis.service';
import { UsageOutbox } from '../token-tracking/outbox/usage-outbox';
import type { OperationType } from '../token-tracking/usage-record';
import { LabelLimiter } from './label-limiter';

export const METRIC_PREFIX = 'token_ledger_';

/** What metrics need to know about a recorded usage event. */
export interface UsageObservation {
  operation: OperationType;
  model: string;
  provider: string;
  promptTokens: number;
  completionTokens: number;
  embeddingTokens: number;
  costMicros: number;
  latencyMs: number;
  success: boolean;
  /** `unpriced` calls are counted by model so a missing price shows up before the invoice does. */
  costSource?: string;
}

/** The seed 001 `/metrics` JSON. */
export interface MetricsSnapshot {
  requests_total: number;
  errors_total: number;
  avg_latency_ms: number;
  stage_distribution: Record<string, number>;
  intent_frequency: Record<string, number>;
  token_usage: {
    total_prompt_tokens: number;
    total_completion_tokens: number;
    total_embedding_tokens: number;
    total_cost_usd: number;
  };
}

/**
 * Which step of an AI request an operation is (seed 001's stage_distribution): intent
 * classification, the answer itself, embeddings, or a tool call.
 */
export const OPERATION_STAGES: Record<OperationType, string> = {
  chat_intent: 'intent',
  prompt_enhancement: 'thinking',
  chat_info: 'response',
  chat_modification: 'response',
  orcha_chat: 'response',
  chat_completion: 'response',
  plugin_generation: 'response',
  code_generation: 'response',
  rag_answer: 'response',
  rag_streaming: 'response',
  embedding: 'embedding',
  batch_embedding: 'embedding',
  tool_call: 'tool',
};

/** A successful answer of the plugin chat is the intent the classifier decided (seed 001's intent_frequency). */
const OPERATION_INTENTS: Partial<Record<OperationType, string>> = { chat_info: 'info', chat_modification: 'modification' };

/** Routes that are infrastructure, not traffic: left out of the seed JSON request counts. */
const INFRASTRUCTURE_ROUTE = /^\/(metrics|health|docs)(\/|$|-)/;
const TOKEN_LIMITS = new Set(['rolling_24h_tokens', 'daily_tokens', 'monthly_cost']);
const LATENCY_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];
const PROVIDER_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 40, 60, 120];

/**
 * Process-local metrics: Prometheus counters (one registry per application instance) and
 * the seed 001 JSON. Labels are bounded: operation types and limits are closed sets, routes are
 * Nest route patterns, and models and providers are capped by a LabelLimiter. No user labels.
 */
@Injectable()
export class MetricsService implements OnModuleInit {
  readonly registry = new Registry();
  private readonly models = new LabelLimiter(100);
  private readonly providers = new LabelLimiter(20);
  private readonly routes = new LabelLimiter(300);

  private readonly json = {
    requests: 0,
    errors: 0,
    latencyMsSum: 0,
    stages: {} as Record<string, number>,
    intents: {} as Record<string, number>,
    promptTokens: 0,
    completionTokens: 0,
    embeddingTokens: 0,
    costMicros: 0,
  };

  private readonly tokens = this.counter('tokens_total', 'Tokens used, by type (prompt, completion, embedding), model, provider and operation', ['type', 'model', 'provider', 'operation']);
  private readonly cost = this.counter('cost_usd_total', 'Estimated provider cost in USD, by model, provider and operation', ['model', 'provider', 'operation']);
  private readonly unpricedCalls = this.counter('unpriced_calls_total', 'Calls recorded without a price (cost 0), by model and provider', ['model', 'provider']);
  private readonly unpricedTokens = this.counter('unpriced_tokens_total', 'Tokens of calls recorded without a price, by model', ['model']);
  private readonly events = this.counter('usage_events_total', 'Usage events recorded, by operation, provider and outcome', ['operation', 'provider', 'success']);
  private readonly providerLatency = new Histogram({
    name: `${METRIC_PREFIX}provider_latency_seconds`,
    help: 'Provider call latency of recorded usage events',
    labelNames: ['provider', 'operation'],
    buckets: PROVIDER_BUCKETS,
    registers: [this.registry],
  });
  private readonly httpRequests = this.counter('http_requests_total', 'HTTP requests, by method, route pattern and status', ['method', 'route', 'status']);
  private readonly httpErrors = this.counter('http_errors_total', 'HTTP responses with a 5xx status, by method, route pattern and status', ['method', 'route', 'status']);
  private readonly httpLatency = new Histogram({
    name: `${METRIC_PREFIX}http_request_duration_seconds`,
    help: 'HTTP request duration, by method, route pattern and status class',
    labelNames: ['method', 'route', 'status_class'],
    buckets: LATENCY_BUCKETS,
    registers: [this.registry],
  });
  private readonly limitRefusals = this.counter('limit_refusals_total', 'Requests refused with 429, by limit (token limits, or api_key_rate_limit)', ['limit']);
  private readonly ledgerFailures = this.counter('ledger_write_failures_total', 'Ledger writes that failed or timed out', []);
  private readonly eventFailures = this.counter('usage_event_write_failures_total', 'Usage event writes (event or aggregates) that failed', []);
  private readonly highUsage = this.counter('high_usage_operations_total', 'Operations that used far more tokens than expected for their type', ['operation']);
  private readonly budgetAlerts = this.counter('budget_alerts_total', 'Budget thresholds crossed, by scope and metric', ['scope', 'metric']);
  private readonly webhookDeliveries = this.counter('alert_webhook_deliveries_total', 'Alert webhook deliveries, by outcome (delivered, retried, failed)', ['outcome']);
  private readonly seedTokens = new Counter({
    name: 'noki_ai_tokens_total',
    help: 'Tokens used, by type (seed metric name)',
    labelNames: ['type'],
    registers: [this.registry],
  });
  private readonly seedCost = new Counter({ name: 'noki_ai_cost_total', help: 'Estimated cost in USD (seed metric name)', registers: [this.registry] });

  constructor(
    private readonly adapterHost: HttpAdapterHost,
    private readonly redis: RedisService,
    @InjectConnection() private readonly connection: Connection,
    private readonly outbox: UsageOutbox,
  ) {
    collectDefaultMetrics({ register: this.registry, prefix: METRIC_PREFIX });
    // prom-client names these gauges *_total, which promtool rejects; the per-type gauges without the suffix stay.
    for (const name of ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total']) {
      this.registry.removeSingleMetric(`${METRIC_PREFIX}${name}`);
    }
    for (const type of ['prompt', 'completion', 'embedding']) this.seedTokens.inc({ type }, 0);
    this.seedCost.inc(0);
    this.ledgerFailures.inc(0);
    this.eventFailures.inc(0);
    const redisService = this.redis;
    const mongo = this.connection;
    new Gauge({
      name: `${METRIC_PREFIX}redis_up`,
      help: '1 while the Redis connection is ready',
      registers: [this.registry],
      collect() {
        this.set(redisService.isReady ? 1 : 0);
      },
    });
    new Gauge({
      name: `${METRIC_PREFIX}mongodb_up`,
      help: '1 while the MongoDB connection is open',
      registers: [this.registry],
      collect() {
        this.set(mongo.readyState === 1 ? 1 : 0);
      },
    });
    const backlog = this.outbox;
    new Gauge({
      name: `${METRIC_PREFIX}outbox_records`,
      help: 'Usage records waiting in the ledger outbox for replay',
      registers: [this.registry],
      collect() {
        this.set(backlog.stats().records);
      },
    });
    new Gauge({
      name: `${METRIC_PREFIX}outbox_oldest_age_seconds`,
      help: 'Age of the oldest record waiting in the ledger outbox (0 when empty)',
      registers: [this.registry],
      collect() {
        this.set((backlog.stats().oldestAgeMs ?? 0) / 1000);
      },
    });
  }

  onModuleInit(): void {
    const fastify = this.adapterHost.httpAdapter?.getInstance<FastifyInstance>();
    if (!fastify?.addHook) return;
    fastify.addHook('onSend', async (request: FastifyRequest, reply: FastifyReply, payload: unknown) => {
      if (reply.statusCode === 429) this.countLimitRefusal(limitOf(payload));
      return payload;
    });
    fastify.addHook('onResponse', async (request: FastifyRequest, reply: FastifyReply) => {
      this.observeHttp(request.method, request.routeOptions?.url, reply.statusCode, reply.elapsedTime);
    });
  }

  observeUsage(usage: UsageObservation): void {
    const model = this.models.label(usage.model);
    const provider = this.providers.label(usage.provider);
    const operation = usage.operation;
    const costUsd = usage.costMicros / 1e6;
    this.tokens.inc({ type: 'prompt', model, provider, operation }, usage.promptTokens);
    this.tokens.inc({ type: 'completion', model, provider, operation }, usage.completionTokens);
    this.tokens.inc({ type: 'embedding', model, provider, operation }, usage.embeddingTokens);
    this.cost.inc({ model, provider, operation }, costUsd);
    if (usage.costSource === 'unpriced') {
      this.unpricedCalls.inc({ model, provider });
      this.unpricedTokens.inc({ model }, usage.promptTokens + usage.completionTokens + usage.embeddingTokens);
    }
    this.events.inc({ operation, provider, success: String(usage.success) });
    if (operation !== 'tool_call') this.providerLatency.observe({ provider, operation }, usage.latencyMs / 1000);
    this.seedTokens.inc({ type: 'prompt' }, usage.promptTokens);
    this.seedTokens.inc({ type: 'completion' }, usage.completionTokens);
    this.seedTokens.inc({ type: 'embedding' }, usage.embeddingTokens);
    this.seedCost.inc(costUsd);

    const json = this.json;
    json.promptTokens += usage.promptTokens;
    json.completionTokens += usage.completionTokens;
    json.embeddingTokens += usage.embeddingTokens;
    json.costMicros += usage.costMicros;
    const stage = OPERATION_STAGES[operation] ?? 'other';
    json.stages[stage] = (json.stages[stage] ?? 0) + 1;
    const intent = OPERATION_INTENTS[operation];
    if (intent && usage.success) json.intents[intent] = (json.intents[intent] ?? 0) + 1;
  }

  observeHttp(method: string, routePattern: string | undefined, status: number, elapsedMs: number): void {
    const route = routePattern ? this.routes.label(routePattern) : 'unmatched';
    const labels = { method, route, status: String(status) };
    this.httpRequests.inc(labels);
    if (status >= 500) this.httpErrors.inc(labels);
    this.httpLatency.observe({ method, route, status_class: `${Math.floor(status / 100)}xx` }, elapsedMs / 1000);
    if (routePattern && INFRASTRUCTURE_ROUTE.test(routePattern)) return;
    this.json.requests += 1;
    if (status >= 500) this.json.errors += 1;
    this.json.latencyMsSum += elapsedMs;
  }

  countLimitRefusal(limit: string): void {
    this.limitRefusals.inc({ limit: TOKEN_LIMITS.has(limit) ? limit : 'api_key_rate_limit' });
  }

  countLedgerWriteFailure(): void {
    this.ledgerFailures.inc();
  }

  countEventWriteFailure(): void {
    this.eventFailures.inc();
  }

  countHighUsage(operation: OperationType): void {
    this.highUsage.inc({ operation });
  }

  countBudgetAlert(scope: string, metric: string): void {
    this.budgetAlerts.inc({ scope, metric });
  }

  countWebhookDelivery(outcome: 'delivered' | 'retried' | 'failed'): void {
    this.webhookDeliveries.inc({ outcome });
  }

  snapshot(): MetricsSnapshot {
    const json = this.json;
    return {
      requests_total: json.requests,
      errors_total: json.errors,
      avg_latency_ms: json.requests === 0 ? 0 : Math.round((json.latencyMsSum / json.requests) * 100) / 100,
      stage_distribution: { ...json.stages },
      intent_frequency: { ...json.intents },
      token_usage: {
        total_prompt_tokens: json.promptTokens,
        total_completion_tokens: json.completionTokens,
        total_embedding_tokens: json.embeddingTokens,
        total_cost_usd: json.costMicros / 1e6,
      },
    };
  }

  /** Prometheus text exposition format 0.0.4. */
  prometheus(): Promise<string> {
    return this.registry.metrics();
  }

  get prometheusContentType(): string {
    return this.registry.contentType;
  }

  private counter(name: string, help: string, labelNames: string[]): Counter<string> {
    return new Counter({ name: `${METRIC_PREFIX}${name}`, help, labelNames, registers: [this.registry] });
  }
}

function limitOf(payload: unknown): string {
  if (typeof payload !== 'string' || !payload.includes('"limit"')) return 'api_key_rate_limit';
  try {
    const limit = (JSON.parse(payload) as { limit?: unknown }).limit;
    return typeof limit === 'string' ? limit : 'api_key_rate_limit';
  } catch {
    return 'api_key_rate_limit';
  }
}
