import { Prop, Schema, SchemaFactory } from '@nestjs/mongoose';
import { Schema as MongooseSchema } from 'mongoose';
import type { CellMap, Granularity, RollupMetrics, TierMetrics, ToolMetrics } from './usage-rollup';

/** System-wide usage of one day or month; see SystemRollup in usage-rollup.ts. `_id` = `day:YYYY-MM-DD` / `month:YYYY-MM`. */
@Schema({ collection: 'usage_rollups', versionKey: false, _id: false, minimize: false })
export class UsageRollup {
  @Prop({ type: String, required: true }) _id!: string;
  @Prop({ type: String, required: true }) granularity!: Granularity;
  @Prop({ required: true }) period!: string;
  @Prop({ type: MongooseSchema.Types.Mixed }) totals!: RollupMetrics;
  @Prop({ type: MongooseSchema.Types.Mixed }) cells!: CellMap;
  @Prop({ type: MongooseSchema.Types.Mixed }) tiers!: Record<string, TierMetrics>;
  @Prop({ type: MongooseSchema.Types.Mixed }) providers!: Record<string, RollupMetrics>;
  @Prop({ type: MongooseSchema.Types.Mixed }) tools!: Record<string, Record<string, ToolMetrics>>;
  @Prop() updatedAt!: Date;
}

export const UsageRollupSchema = SchemaFactory.createForClass(UsageRollup);
UsageRollupSchema.index({ granularity: 1, period: 1 });

/** One user's usage of one day or month. `_id` = `day:YYYY-MM-DD:<userId>` / `month:YYYY-MM:<userId>`. */
@Schema({ collection: 'usage_user_rollups', versionKey: false, _id: false, minimize: false })
export class UserUsageRollup {
  @Prop({ type: String, required: true }) _id!: string;
  @Prop({ type: String, required: true }) granularity!: Granularity;
  @Prop({ required: true }) period!: string;
  @Prop({ required: true }) userId!: string;
  @Prop({ type: MongooseSchema.Types.Mixed }) totals!: RollupMetrics;
  @Prop({ type: MongooseSchema.Types.Mixed }) cells!: CellMap;
  /** Day documents only (DAILY_RETENTION_DAYS after the day); month documents are kept. */
  @Prop() expiresAt?: Date;
  @Prop() updatedAt!: Date;
}

export const UserUsageRollupSchema = SchemaFactory.createForClass(UserUsageRollup);
// Active users and top users of one period (day and month keys differ in format, so period alone is selective).
UserUsageRollupSchema.index({ period: 1, 'totals.costMicros': -1 });
// One user's days or months.
UserUsageRollupSchema.index({ userId: 1, granularity: 1, period: 1 });
UserUsageRollupSchema.index({ expiresAt: 1 }, { expireAfterSeconds: 0 });
