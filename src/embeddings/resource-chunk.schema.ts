import { Prop, Schema, SchemaFactory } from '@nestjs/mongoose';
import { Schema as MongooseSchema } from 'mongoose';

/**
 * One chunk of an embedded resource, owned by one user. Written and read only through
 * ResourceChunksService; every query carries the owner's userId.
 */
@Schema({ collection: 'resource_chunks', versionKey: false })
export class ResourceChunk {
  @Prop({ required: true }) userId!: string;
  @Prop({ required: true }) resourceId!: string;
  /** The embedding model the vector came from; searches compare vectors of one model only. */
  @Prop({ required: true }) model!: string;
  @Prop({ required: true }) chunkIndex!: number;
  /** Which embedding of the resource wrote the chunk; a re-embedding removes older generations. */
  @Prop({ required: true }) generation!: number;
  @Prop({ required: true }) text!: string;
  @Prop({ required: true }) tokens!: number;
  /** BSON binData subtype 9 (float32 vector): a quarter the size of a double array, and what Atlas Vector Search indexes. */
  @Prop({ type: MongooseSchema.Types.Mixed, required: true }) embedding!: unknown;
  @Prop({ required: true }) dimensions!: number;
  @Prop({ required: true }) createdAt!: Date;
}

export const ResourceChunkSchema = SchemaFactory.createForClass(ResourceChunk);
/** Loading a user's matrix: one model, in resource and chunk order. */
ResourceChunkSchema.index({ userId: 1, model: 1, resourceId: 1, chunkIndex: 1 });
ResourceChunkSchema.index({ userId: 1, resourceId: 1, generation: 1, chunkIndex: 1 }, { unique: true });

/**
 * A counter per user, bumped on every change to the user's chunks: generations are taken
 * from it, and in-memory matrices and cached results are valid only for the version they
 * were built at, in every process.
 */
@Schema({ collection: 'resource_chunk_versions', versionKey: false })
export class ResourceChunkVersion {
  /** The userId. */
  @Prop({ type: String, required: true }) _id!: string;
  @Prop({ required: true }) version!: number;
}

export const ResourceChunkVersionSchema = SchemaFactory.createForClass(ResourceChunkVersion);
