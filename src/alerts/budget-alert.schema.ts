import { Prop, Schema, SchemaFactory } from '@nestjs/mongoose';
import { Schema as MongooseSchema } from 'mongoose';

export type AlertStatus = 'pending' | 'delivered' | 'failed' | 'logged';

export interface WebhookDelivery {
  url: string;
  attempts: number;
  deliveredAt?: Date;
  lastError?: string;
}

/**
 * One budget threshold crossed in one period. `_id` is the threshold + period key, so the
 * unique _id index makes each alert fire once per period, across restarts and instances.
 */
@Schema({ collection: 'budget_alerts', versionKey: false, _id: false })
export class BudgetAlert {
  @Prop({ type: String, required: true }) _id!: string;
  /** pending until every webhook answered (or gave up); logged when no webhook is configured. */
  @Prop({ type: String, required: true }) status!: AlertStatus;
  @Prop({ type: MongooseSchema.Types.Mixed, required: true }) payload!: Record<string, unknown>;
  @Prop({ type: [MongooseSchema.Types.Mixed], default: [] }) deliveries!: WebhookDelivery[];
  /** While pending: until when the instance delivering it owns it; afterwards the sweep retries it. */
  @Prop() leaseUntil?: Date;
  @Prop({ required: true }) createdAt!: Date;
  @Prop() updatedAt?: Date;
}

export const BudgetAlertSchema = SchemaFactory.createForClass(BudgetAlert);
BudgetAlertSchema.index({ status: 1, leaseUntil: 1 });
