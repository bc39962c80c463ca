import { Prop, Schema, SchemaFactory } from '@nestjs/mongoose';
import { HydratedDocument, Schema as MongooseSchema } from 'mongoose';
import type { TierLimits } from '../limits/tier-limits';
import type { OperationType } from './usage-record';

/** One day's or one month's rollup, stored under dailyUsage[YYYY-MM-DD] / monthlyUsage[YYYY-MM]. */
export interface UsageBucket {
  promptTokens: number;
  completionTokens: number;
  embeddingTokens: number;
  totalTokens: number;
  costMicros: number;
  requestCount: number;
  operations: Partial<Record<OperationType, number>>;
}

export interface RecentSession {
  recordId: string;
  operationType: OperationType;
  model: string;
  provider: string;
  promptTokens: number;
  completionTokens: number;
  embeddingTokens: number;
  totalTokens: number;
  costMicros: number;
  costSource: string;
  priceVersion?: string;
  priceEntry?: string;
  estimated: boolean;
  latencyMs: number;
  success: boolean;
  errorMessage?: string;
  requestId?: string;
  timestamp: Date;
}

/**
 * One document per user. Written only by TokenTrackingService, each write one atomic
 * upsert carrying one or more of the user's records; the buckets are maps so one $inc reaches them.
 */
@Schema({ collection: 'user_token_usage', versionKey: false, minimize: false })
export class UserTokenUsage {
  @Prop({ required: true, unique: true })
  userId!: string;

  @Prop({ default: 0 }) totalPromptTokens!: number;
  @Prop({ default: 0 }) totalCompletionTokens!: number;
  @Prop({ default: 0 }) totalEmbeddingTokens!: number;
  @Prop({ default: 0 }) totalTokens!: number;
  @Prop({ default: 0 }) totalCostMicros!: number;
  @Prop({ default: 0 }) requestCount!: number;

  /** Pricing/limit tier; unset means DEFAULT_TIER. */
  @Prop() tier?: string;

  /** Per-user overrides laid over the tier's limits (null = unlimited). */
  @Prop({ type: MongooseSchema.Types.Mixed })
  limits?: TierLimits;

  /** Raised by every change of tier or limits (orders the copies held in Redis). */
  @Prop() planVersion?: number;

  /** When an admin last cleared the rolling window: a replay of the window after Redis lost it starts after this. */
  @Prop() windowResetAt?: Date;

  @Prop() firstRequestAt?: Date;
  @Prop() lastRequestAt?: Date;

  @Prop({ type: MongooseSchema.Types.Mixed, default: {} })
  dailyUsage!: Record<string, UsageBucket>;

  @Prop({ type: MongooseSchema.Types.Mixed, default: {} })
  monthlyUsage!: Record<string, UsageBucket>;

  /** Oldest key present in dailyUsage; lets a write notice when pruning is due without reading the map. */
  @Prop() oldestDay?: string;

  @Prop({ type: [MongooseSchema.Types.Mixed], default: [] })
  recentSessions!: RecentSession[];

  /** Ids of the most recent records applied, so a replayed record is not counted twice. */
  @Prop({ type: [String], default: [] })
  appliedRecordIds!: string[];
}

export type UserTokenUsageDocument = HydratedDocument<UserTokenUsage>;
export const UserTokenUsageSchema = SchemaFactory.createForClass(UserTokenUsage);
