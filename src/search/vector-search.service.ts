import { ConflictException, Injectable, Logger } from '@nestjs/common';
import { AppConfig } from '../config/app-config';
import { ResourceChunksService, ScoredChunk, VectorQuery } from '../embeddings/resource-chunks.service';
import { VectorMatrix, VectorMatrixBuilder } from './vector-matrix';

export interface VectorIndexStats {
  mode: 'inprocess' | 'atlas';
  /** Users' matrices held in memory. */
  matrices: number;
  vectors: number;
  bytes: number;
  maxBytes: number;
}

interface HeldMatrix {
  version: number;
  matrix: VectorMatrix;
}

/**
 * Nearest chunks of one user. In process (the default) each user's vectors of a model are
 * loaded once into a VectorMatrix and reused until the user's chunk version changes; the
 * matrices share a memory budget, least recently searched first out. With
 * VECTOR_SEARCH=atlas the search runs in MongoDB Atlas instead.
 */
@Injectable()
export class VectorSearchService {
  private readonly logger = new Logger(VectorSearchService.name);
  /** In least-recently-used order (Map insertion order). */
  private readonly held = new Map<string, HeldMatrix>();
  private readonly loading = new Map<string, Promise<VectorMatrix>>();
  private heldBytes = 0;
  private readonly maxBytes: number;

  constructor(
    private readonly chunks: ResourceChunksService,
    private readonly config: AppConfig,
  ) {
    this.maxBytes = config.VECTOR_INDEX_MAX_MB * 1024 * 1024;
  }

  /** `version` is the user's chunk version read before this search (ResourceChunksService.version). */
  async nearest(query: VectorQuery & { version: number }): Promise<ScoredChunk[]> {
    if (this.config.VECTOR_SEARCH === 'atlas') return this.chunks.atlasSearch(query);
    const matrix = await this.matrixFor(query.userId, query.model, query.version);
    let hits;
    try {
      hits = matrix.nearest(query.vector, query.limit, query.resourceIds);
    } catch (error) {
      throw new ConflictException(`${(error as Error).message} (model ${query.model}); re-embed the resources with the current embedding model`);
    }
    const texts = await this.chunks.texts(query.userId, hits.map((hit) => hit.row.id));
    // A chunk replaced after the matrix was read has no text any more: leave it out.
    return hits
      .filter((hit) => texts.has(hit.row.id))
      .map(({ row, score }) => ({ id: row.id, resourceId: row.resourceId, chunkIndex: row.chunkIndex, score, text: texts.get(row.id) as string }));
  }

  /**
   * Whether the user has any vectors of the model, so a search over nothing need not pay for
   * a query embedding. In process this loads the matrix the search then uses; Atlas is only
   * known to hold nothing for a user who never stored a chunk.
   */
  async hasVectors(userId: string, model: string, version: number): Promise<boolean> {
    if (this.config.VECTOR_SEARCH === 'atlas') return version > 0;
    return (await this.matrixFor(userId, model, version)).count > 0;
  }

  stats(): VectorIndexStats {
    let vectors = 0;
    for (const { matrix } of this.held.values()) vectors += matrix.count;
    return { mode: this.config.VECTOR_SEARCH, matrices: this.held.size, vectors, bytes: this.heldBytes, maxBytes: this.maxBytes };
  }

  private async matrixFor(userId: string, model: string, version: number): Promise<VectorMatrix> {
    const key = `${userId}\u0000${model}`;
    const held = this.held.get(key);
    if (held && held.version === version) {
      this.held.delete(key);
      this.held.set(key, held);
      return held.matrix;
    }
    // Concurrent searches of one user share one load.
    const loadKey = `${key}\u0000${version}`;
    let pending = this.loading.get(loadKey);
    if (!pending) {
      pending = this.load(userId, model)
        .then((matrix) => {
          this.hold(key, version, matrix);
          return matrix;
        })
        .finally(() => this.loading.delete(loadKey));
      this.loading.set(loadKey, pending);
    }
    return pending;
  }

  private async load(userId: string, model: string): Promise<VectorMatrix> {
    const expected = await this.chunks.countVectors(userId, model);
    let builder: VectorMatrixBuilder | undefined;
    let skipped = 0;
    await this.chunks.forEachVector(userId, model, (chunk, vector) => {
      builder ??= new VectorMatrixBuilder(vector.length, expected);
      if (vector.length !== builder.dimensions) skipped++;
      else builder.add(chunk, vector);
    });
    if (skipped > 0) {
      this.logger.warn(`${skipped} chunk(s) of user ${userId} (model ${model}) have another dimension than the rest and are not searched`);
    }
    return builder ? builder.build() : VectorMatrix.empty();
  }

  private hold(key: string, version: number, matrix: VectorMatrix): void {
    const previous = this.held.get(key);
    // Versions only grow: a slow load of an older version must not replace a newer matrix.
    if (previous && previous.version > version) return;
    if (previous) {
      this.held.delete(key);
      this.heldBytes -= previous.matrix.bytes;
    }
    if (matrix.bytes > this.maxBytes) {
      this.logger.warn(
        `the vectors of one user (${matrix.count} x ${matrix.dimensions}, ${Math.round(matrix.bytes / 2 ** 20)} MB) exceed VECTOR_INDEX_MAX_MB; they are reloaded for every search`,
      );
      return;
    }
    this.held.set(key, { version, matrix });
    this.heldBytes += matrix.bytes;
    for (const [oldest, { matrix: evicted }] of this.held) {
      if (this.heldBytes <= this.maxBytes) break;
      this.held.delete(oldest);
      this.heldBytes -= evicted.bytes;
    }
  }
}
