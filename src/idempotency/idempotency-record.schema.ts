import { Prop, Schema, SchemaFactory } from '@nestjs/mongoose';
import { Schema as MongooseSchema } from 'mongoose';

/** One Idempotency-Key claim: pending while the first request runs, then its stored response. */
@Schema({ collection: 'idempotency_keys', versionKey: false })
export class IdempotencyRecord {
  /** `<route>|<caller>|<key>` */
  @Prop({ type: String, required: true }) _id!: string;
  /** SHA-256 of the method, route and canonical JSON body. */
  @Prop({ required: true }) fingerprint!: string;
  @Prop({ required: true, enum: ['pending', 'done'] }) state!: 'pending' | 'done';
  @Prop() statusCode?: number;
  /** The response body, its long number arrays packed as float64 binData (stored-body.ts). */
  @Prop({ type: MongooseSchema.Types.Mixed }) body?: unknown;
  /** Instead of body: the size of a response too large to keep for replays. */
  @Prop() bodyTooLargeBytes?: number;
  @Prop({ required: true }) createdAt!: Date;
  @Prop({ required: true }) expiresAt!: Date;
}

export const IdempotencyRecordSchema = SchemaFactory.createForClass(IdempotencyRecord);
IdempotencyRecordSchema.index({ expiresAt: 1 }, { expireAfterSeconds: 0 });
