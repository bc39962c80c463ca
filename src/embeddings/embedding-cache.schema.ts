import { Prop, Schema, SchemaFactory } from '@nestjs/mongoose';

/** A text's embedding, keyed by model, owner and content hash: the same user's later identical text costs no tokens. */
@Schema({ collection: 'embedding_cache', versionKey: false })
export class EmbeddingCacheEntry {
  /** `<model>|<userId, empty without one>|<sha256 of the text>` */
  @Prop({ type: String, required: true }) _id!: string;
  @Prop({ required: true }) model!: string;
  /** float64 values as binData (older entries: an array of numbers). */
  @Prop({ type: Buffer, required: true }) vector!: Buffer;
  /** What embedding it cost when it was first computed. */
  @Prop({ required: true }) tokens!: number;
  @Prop({ required: true }) createdAt!: Date;
}

export const EmbeddingCacheEntrySchema = SchemaFactory.createForClass(EmbeddingCacheEntry);

/** Hit and miss counters of the embedding cache (one document per cache name). */
@Schema({ collection: 'embedding_cache_stats', versionKey: false })
export class EmbeddingCacheStats {
  @Prop({ type: String, required: true }) _id!: string;
  @Prop({ default: 0 }) hits!: number;
  @Prop({ default: 0 }) misses!: number;
}

export const EmbeddingCacheStatsSchema = SchemaFactory.createForClass(EmbeddingCacheStats);
