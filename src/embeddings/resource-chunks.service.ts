import { Injectable, Logger, ServiceUnavailableException } from '@nestjs/common';
import { InjectModel } from '@nestjs/mongoose';
import { Binary, ObjectId } from 'mongodb';
import { Model } from 'mongoose';
import { Clock } from '../common/clock';
import { AppConfig } from '../config/app-config';
import { ResourceChunk, ResourceChunkVersion } from './resource-chunk.schema';

export interface NewChunk {
  text: string;
  tokens: number;
  vector: readonly number[];
}

export interface ChunkRef {
  id: string;
  resourceId: string;
  chunkIndex: number;
}

export interface ScoredChunk extends ChunkRef {
  /** Cosine similarity, -1..1. */
  score: number;
  text: string;
}

export interface VectorQuery {
  userId: string;
  model: string;
  vector: ArrayLike<number>;
  limit: number;
  resourceIds?: readonly string[];
}

/**
 * The only reader and writer of resource_chunks: a user's embedded resources, chunk by
 * chunk, with their vectors. Every query carries the owner's userId.
 */
const INSERT_SLICE = 100;

@Injectable()
export class ResourceChunksService {
  private readonly logger = new Logger(ResourceChunksService.name);
  private atlasIndexReady = false;

  constructor(
    @InjectModel(ResourceChunk.name) private readonly chunks: Model<ResourceChunk>,
    @InjectModel(ResourceChunkVersion.name) private readonly versions: Model<ResourceChunkVersion>,
    private readonly config: AppConfig,
    private readonly clock: Clock,
  ) {}

  /**
   * Stores the chunks of a resource in place of any it had. The new generation is written
   * before the old one is removed, so searches never see the resource missing; when two
   * embeddings of one resource race, the later generation wins and the earlier removes itself.
   */
  async replace(userId: string, resourceId: string, model: string, chunks: readonly NewChunk[]): Promise<{ stored: number; replaced: number }> {
    const generation = await this.bump(userId);
    const createdAt = new Date(this.clock.now());
    // In slices: serialising hundreds of vectors at once would hold the event loop for tens of ms.
    for (let start = 0; start < chunks.length; start += INSERT_SLICE) {
      await this.chunks.collection.insertMany(
        chunks.slice(start, start + INSERT_SLICE).map((chunk, offset) => ({
          userId,
          resourceId,
          model,
          chunkIndex: start + offset,
          generation,
          text: chunk.text,
          tokens: chunk.tokens,
          embedding: Binary.fromFloat32Array(Float32Array.from(chunk.vector)),
          dimensions: chunk.vector.length,
          createdAt,
        })),
        { ordered: true },
      );
    }
    const { deletedCount } = await this.chunks.collection.deleteMany({ userId, resourceId, generation: { $lt: generation } });
    const newer = await this.chunks.collection.findOne({ userId, resourceId, generation: { $gt: generation } }, { projection: { _id: 1 } });
    if (newer) await this.chunks.collection.deleteMany({ userId, resourceId, generation });
    await this.bump(userId);
    return { stored: newer ? 0 : chunks.length, replaced: deletedCount };
  }

  /** Removes every chunk of the resource; the number removed (0 when it had none). */
  async remove(userId: string, resourceId: string): Promise<number> {
    const { deletedCount } = await this.chunks.collection.deleteMany({ userId, resourceId });
    if (deletedCount > 0) await this.bump(userId);
    return deletedCount;
  }

  /** Changes with every write to the user's chunks. */
  async version(userId: string): Promise<number> {
    const found = await this.versions.collection.findOne({ _id: userId } as never, { projection: { version: 1 } });
    return (found?.version as number | undefined) ?? 0;
  }

  /** Streams every vector of the user's chunks of one model, in resource and chunk order. */
  async forEachVector(userId: string, model: string, visit: (chunk: ChunkRef, vector: Float32Array) => void): Promise<void> {
    const cursor = this.chunks.collection
      .find({ userId, model }, { projection: { resourceId: 1, chunkIndex: 1, embedding: 1 } })
      .sort({ resourceId: 1, chunkIndex: 1 })
      // ~6 KB a 1536-dimension vector: 250 make a batch the driver decodes in a few milliseconds.
      .batchSize(250);
    for await (const chunk of cursor) {
      visit(
        { id: String(chunk._id), resourceId: chunk.resourceId as string, chunkIndex: chunk.chunkIndex as number },
        (chunk.embedding as Binary).toFloat32Array(),
      );
    }
  }

  async countVectors(userId: string, model: string): Promise<number> {
    return this.chunks.collection.countDocuments({ userId, model });
  }

  /** Texts of the user's chunks by id (ids of other users' chunks find nothing). */
  async texts(userId: string, ids: readonly string[]): Promise<Map<string, string>> {
    if (ids.length === 0) return new Map();
    const found = await this.chunks.collection
      .find({ userId, _id: { $in: ids.map((id) => new ObjectId(id)) } }, { projection: { text: 1 } })
      .toArray();
    return new Map(found.map((chunk) => [String(chunk._id), chunk.text as string]));
  }

  /**
   * Nearest chunks through MongoDB Atlas Vector Search. Atlas answers an unknown index
   * name with no results rather than an error, so the index is checked first: a server
   * without it (or without Atlas Search at all) fails loudly instead of finding nothing.
   */
  async atlasSearch(query: VectorQuery): Promise<ScoredChunk[]> {
    const index = this.config.ATLAS_VECTOR_INDEX;
    await this.ensureAtlasIndex(index);
    const filter: Record<string, unknown> = { userId: query.userId, model: query.model };
    if (query.resourceIds) filter.resourceId = { $in: [...query.resourceIds] };
    let found: Record<string, unknown>[];
    try {
      found = await this.chunks.collection
        .aggregate([
          {
            $vectorSearch: {
              index,
              path: 'embedding',
              queryVector: Array.from(query.vector),
              numCandidates: Math.min(10_000, Math.max(100, query.limit * 20)),
              limit: query.limit,
              filter,
            },
          },
          { $project: { resourceId: 1, chunkIndex: 1, text: 1, score: { $meta: 'vectorSearchScore' } } },
        ])
        .toArray();
    } catch (error) {
      throw this.atlasUnavailable(index, error);
    }
    // Atlas reports cosine similarity rescaled to 0..1 as (1 + cosine) / 2.
    return found.map((chunk) => ({
      id: String(chunk._id),
      resourceId: chunk.resourceId as string,
      chunkIndex: chunk.chunkIndex as number,
      text: chunk.text as string,
      score: 2 * (chunk.score as number) - 1,
    }));
  }

  private async ensureAtlasIndex(index: string): Promise<void> {
    if (this.atlasIndexReady) return;
    let found: Array<{ name?: string; status?: string; queryable?: boolean }>;
    try {
      found = (await this.chunks.collection.listSearchIndexes(index).toArray()) as typeof found;
    } catch (error) {
      throw this.atlasUnavailable(index, error);
    }
    const definition = found.find((candidate) => candidate.name === index);
    if (!definition) throw this.atlasUnavailable(index, new Error(`no search index named "${index}" exists on resource_chunks`));
    if (definition.queryable === false) {
      throw this.atlasUnavailable(index, new Error(`index "${index}" is not queryable yet (status ${definition.status ?? 'unknown'})`));
    }
    this.atlasIndexReady = true;
  }

  private atlasUnavailable(index: string, error: unknown): ServiceUnavailableException {
    const reason = error instanceof Error ? error.message : String(error);
    const message = `VECTOR_SEARCH=atlas needs MongoDB Atlas with the vector search index "${index}" on resource_chunks (see README): ${reason}`;
    this.logger.error(message);
    return new ServiceUnavailableException(message);
  }

  /** Atomically increments and returns the user's version. */
  private async bump(userId: string): Promise<number> {
    const updated = await this.versions.collection.findOneAndUpdate(
      { _id: userId } as never,
      { $inc: { version: 1 } },
      { upsert: true, returnDocument: 'after', projection: { version: 1 } },
    );
    return updated!.version as number;
  }
}
