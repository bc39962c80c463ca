import { BadRequestException, Injectable, Logger } from '@nestjs/common';
import { PricingService } from '../ai/pricing.service';
import { UsageEventsService } from '../analytics/usage-events.service';
import type { UsageEvent } from '../analytics/usage-event.schema';
import type { RepricingInProgress } from '../analytics/usage-event.writer';
import { MICROS_PER_USD } from '../common/money';
import { TokenTrackingService } from '../token-tracking/token-tracking.service';
import type { RepriceDifferenceDto, RepriceReportDto, RepriceRequestDto } from './dto/reprice.dto';

type Difference = Omit<RepriceDifferenceDto, 'deltaUsd'>;

const emptyDifference = (): Difference => ({ events: 0, beforeMicros: 0, afterMicros: 0, deltaMicros: 0 });
const withUsd = <T extends Difference>(difference: T): T & { deltaUsd: number } => ({ ...difference, deltaUsd: difference.deltaMicros / MICROS_PER_USD });

/**
 * Re-prices a period's usage after a price list fix: each event priced by a price list gets
 * today's figure for its own date (the dated catalogue, then genai-prices), and the change
 * moves the event, its day and month aggregates, and the user's ledger (totals, buckets,
 * recent session) by the same micro-dollars. Provider-reported costs are the provider's own
 * invoice figure and never change.
 *
 * Idempotent: a second run finds every event at its new price and changes nothing. Each event
 * is moved first (guarded by the cost it was read with) and marked with what is left to
 * correct; the ledger correction is idempotent by its id, so a run that stopped half way is
 * completed by the next one.
 */
@Injectable()
export class UsageRepricingService {
  private readonly logger = new Logger(UsageRepricingService.name);

  constructor(
    private readonly pricing: PricingService,
    private readonly events: UsageEventsService,
    private readonly ledger: TokenTrackingService,
  ) {}

  private running: Promise<unknown> = Promise.resolve();

  /** Runs one at a time in this process; runs of other instances are kept apart by the events' guards and leases. */
  reprice(request: RepriceRequestDto): Promise<RepriceReportDto> {
    if (request.from.getTime() >= request.to.getTime()) throw new BadRequestException('from must be before to');
    const run = this.running.then(() => this.run(request));
    this.running = run.catch(() => undefined);
    return run;
  }

  private async run(request: RepriceRequestDto): Promise<RepriceReportDto> {
    await this.events.flushed();
    const dryRun = request.dryRun !== false;
    let resumed = 0;
    if (!dryRun) {
      for (const progress of await this.events.interruptedRepricings()) {
        await this.complete(progress);
        resumed += 1;
      }
    }

    const total = emptyDifference();
    const users = new Map<string | null, Difference>();
    const models = new Map<string, Difference>();
    let examined = 0;
    let changed = 0;
    let leftPriced = 0;
    let conflicts = 0;
    let withoutBreakdown = 0;
    for await (const event of this.events.repricingCandidates({ from: request.from, to: request.to, userId: request.userId, model: request.model })) {
      examined += 1;
      const quote = this.pricing.listPrice([event.model_name], usageOf(event), event.timestamp, { quiet: true });
      if (quote.costSource === 'unpriced' && event.costSource !== 'unpriced') {
        leftPriced += 1;
        continue;
      }
      if (quote.costMicros === event.cost_micros && quote.costSource === event.costSource) continue;
      // Events written before price attribution kept no cached/reasoning counts: priced as if none.
      if (event.costSource === 'catalog' && event.priceVersion === undefined && event.cachedTokens === undefined) withoutBreakdown += 1;
      if (!dryRun) {
        const progress = await this.events.beginRepricing(event, {
          repriceId: `reprice:${event._id}:${event.cost_micros}:${quote.costMicros}:${quote.costSource}`,
          costMicros: quote.costMicros,
          costSource: quote.costSource,
          priceVersion: quote.priceVersion,
          priceEntry: quote.priceEntry,
        });
        if (!progress) {
          conflicts += 1;
          continue;
        }
        await this.complete(progress);
      }
      changed += 1;
      for (const difference of [total, entryOf(users, event.user_id), entryOf(models, event.model_name)]) {
        difference.events += 1;
        difference.beforeMicros += event.cost_micros;
        difference.afterMicros += quote.costMicros;
        difference.deltaMicros += quote.costMicros - event.cost_micros;
      }
    }
    if (!dryRun && changed > 0) {
      this.logger.log(`Re-priced ${changed} usage event(s) from ${request.from.toISOString()} to ${request.to.toISOString()}: ${total.deltaMicros} micro-USD`);
    }
    return {
      dryRun,
      from: request.from.toISOString(),
      to: request.to.toISOString(),
      catalogVersion: `catalog ${this.pricing.catalogVersion}`,
      examined,
      changed,
      unchanged: examined - changed - leftPriced - conflicts,
      leftPriced,
      conflicts,
      resumed,
      withoutBreakdown,
      total: withUsd(total),
      users: [...users.entries()]
        .map(([userId, difference]) => withUsd({ userId, ...difference }))
        .sort((a, b) => Math.abs(b.deltaMicros) - Math.abs(a.deltaMicros) || String(a.userId).localeCompare(String(b.userId))),
      models: [...models.entries()].map(([model, difference]) => withUsd({ model, ...difference })).sort((a, b) => a.model.localeCompare(b.model)),
    };
  }

  /** The aggregates, then the ledger, then the event's marker: each step safe to repeat after a stop. */
  private async complete(progress: RepricingInProgress): Promise<void> {
    const { event } = progress;
    await this.events.correctAggregates(progress);
    if (progress.pending.includes('ledger') && event.user_id !== null && progress.deltaMicros !== 0) {
      await this.ledger.correctRecordCost(event.user_id, {
        correctionId: progress.repriceId,
        recordId: event._id,
        occurredAt: event.timestamp,
        deltaMicros: progress.deltaMicros,
        costSource: event.costSource,
        ...(event.priceVersion !== undefined ? { priceVersion: event.priceVersion } : {}),
        ...(event.priceEntry !== undefined ? { priceEntry: event.priceEntry } : {}),
      });
    }
    await this.events.finishRepricing(event._id);
  }
}

function usageOf(event: UsageEvent) {
  return {
    promptTokens: event.prompt_tokens,
    completionTokens: event.completion_tokens,
    embeddingTokens: event.embedding_tokens,
    cachedTokens: event.cachedTokens,
    cacheWriteTokens: event.cacheWriteTokens,
    reasoningTokens: event.reasoningTokens,
  };
}

function entryOf<K>(map: Map<K, Difference>, key: K): Difference {
  let entry = map.get(key);
  if (!entry) map.set(key, (entry = emptyDifference()));
  return entry;
}
