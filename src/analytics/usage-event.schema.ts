import { Prop, Schema, SchemaFactory } from '@nestjs/mongoose';
import type { CostSource, OperationType } from '../token-tracking/usage-record';

/**
 * One tracked operation, with the seed 004 log fields. `_id` is the usage record's recordId,
 * so writing an event twice (an outbox replay) inserts nothing. Written only by UsageEventWriter.
 * Expired by a TTL index on `timestamp` (EVENT_RETENTION_DAYS), which UsageEventsService keeps in step.
 */
@Schema({ collection: 'usage_events', versionKey: false, _id: false })
export class UsageEvent {
  @Prop({ type: String, required: true }) _id!: string;
  @Prop({ required: true }) timestamp!: Date;
  @Prop({ type: String, default: null }) user_id!: string | null;
  @Prop({ type: String, required: true }) operation_type!: OperationType;
  /** The user's query, truncated; absent when LOG_QUERIES=false. */
  @Prop() query?: string;
  @Prop({ required: true }) model_name!: string;
  @Prop({ required: true }) prompt_tokens!: number;
  @Prop({ required: true }) completion_tokens!: number;
  @Prop({ required: true }) embedding_tokens!: number;
  @Prop({ required: true }) total_tokens!: number;
  /** Integer micro-USD: the stored money. */
  @Prop({ required: true }) cost_micros!: number;
  /** USD, for display only (cost_micros / 1e6). */
  @Prop({ required: true }) cost_estimate!: number;
  /** Seconds. */
  @Prop({ required: true }) response_time!: number;
  @Prop({ required: true }) success!: boolean;
  @Prop({ type: String, default: null }) error_message!: string | null;
  @Prop({ required: true }) provider!: string;
  @Prop({ required: true }) tier!: string;
  @Prop({ type: String, required: true }) costSource!: CostSource | 'none';
  /** The price list and entry that priced it (absent for provider-reported costs and unpriced calls). */
  @Prop() priceVersion?: string;
  @Prop() priceEntry?: string;
  /** Parts of prompt_tokens read from / written to the prompt cache, and of completion_tokens spent reasoning: what re-pricing needs. */
  @Prop() cachedTokens?: number;
  @Prop() cacheWriteTokens?: number;
  @Prop() reasoningTokens?: number;
  /** Set by a re-pricing run: when, and the cost before it. */
  @Prop() repricedAt?: Date;
  @Prop() previousCostMicros?: number;
  /** While a re-pricing of this event is under way: what is left to correct (see UsageEventWriter.beginRepricing). */
  @Prop({ type: Object }) repricing?: { repriceId: string; deltaMicros: number; pending: string[]; leaseUntil: Date };
  @Prop({ required: true }) estimated!: boolean;
  @Prop({ required: true }) cacheHit!: boolean;
  @Prop({ type: String, default: null }) requestId!: string | null;
  /** Tool calls (POST /api/usage) only. */
  @Prop() tool_name?: string;
  /** Aggregates this event has not been counted in yet (absent once it is in all of them). */
  @Prop({ type: [String], default: undefined }) rollupsPending?: string[];
  /** Until when the writer that inserted the event owns rollupsPending; a replay may take over after it. */
  @Prop() rollupsLeaseUntil?: Date;
}

export const UsageEventSchema = SchemaFactory.createForClass(UsageEvent);
UsageEventSchema.index({ user_id: 1, timestamp: -1 });
// The TTL index on timestamp (which also serves time-ordered queries) is managed by UsageEventsService.
