import { BadRequestException, Injectable, Logger, NotFoundException } from '@nestjs/common';
import { InjectModel } from '@nestjs/mongoose';
import { createHash } from 'node:crypto';
import { Binary } from 'mongodb';
import { Model } from 'mongoose';
import { AiService, SpentUsage } from '../ai/ai.service';
import { toRequestTokenUsage } from '../ai/dto/request-token-usage.dto';
import { TokenizerService } from '../ai/tokenizer.service';
import { withinDeadline } from '../common/deadline';
import { toNumbers } from '../common/float64-bytes';
import { AppConfig } from '../config/app-config';
import type { OperationType, TrackResult } from '../token-tracking/usage-record';
import type { RequestBudget } from '../limits/request-budget';
import { DeleteResourceResponseDto } from './dto/delete-resource-response.dto';
import { EmbeddingCacheStatsDto, EmbedResourceResponseDto } from './dto/embed-resource-response.dto';
import { EmbedResourceDto } from './dto/embed-resource.dto';
import { EmbeddingCacheEntry, EmbeddingCacheStats } from './embedding-cache.schema';
import { ResourceChunksService } from './resource-chunks.service';
import { chunkByTokens, TextChunk } from './text-chunker';

const STATS_ID = 'embeddings';

export interface EmbedTextsResult {
  vectors: number[][];
  model: string;
  cacheHits: number;
  spent: SpentUsage[];
  tracked: TrackResult[];
}

/** Texts per cache read, provider call and cache write. */
const VECTOR_BATCH = 64;

/**
 * Vectors are cached as float64 binData: exact, and serialised as one buffer, where an array of
 * 1536 BSON doubles costs ~1 µs per element on the event loop. Entries written as arrays still read.
 */
function toStoredVector(vector: readonly number[]): Binary {
  return new Binary(Buffer.from(Float64Array.from(vector).buffer));
}

function fromStoredVector(stored: unknown): number[] {
  if (Array.isArray(stored)) return stored as number[];
  return toNumbers((stored as Binary).buffer);
}

@Injectable()
export class EmbeddingsService {
  private readonly logger = new Logger(EmbeddingsService.name);

  constructor(
    @InjectModel(EmbeddingCacheEntry.name) private readonly cache: Model<EmbeddingCacheEntry>,
    @InjectModel(EmbeddingCacheStats.name) private readonly stats: Model<EmbeddingCacheStats>,
    private readonly ai: AiService,
    private readonly tokenizer: TokenizerService,
    private readonly resources: ResourceChunksService,
    private readonly config: AppConfig,
  ) {}

  /**
   * Splits the texts into overlapping token chunks and embeds them (one chunk is an
   * `embedding`, more a `batch_embedding`). With a userId the chunks are stored as the
   * user's resource, replacing what it held; without one nothing is stored.
   */
  async embedResource(dto: EmbedResourceDto, requestId?: string): Promise<EmbedResourceResponseDto> {
    if (dto.content !== undefined && dto.contents !== undefined) {
      throw new BadRequestException('give either content or contents, not both');
    }
    const texts = dto.contents ?? [dto.content as string];
    const model = dto.model ?? this.config.AI_EMBEDDING_MODEL;
    const options = { size: this.config.EMBED_CHUNK_TOKENS, overlap: this.config.EMBED_CHUNK_OVERLAP };
    const chunks: TextChunk[] = [];
    for (const text of texts) {
      for (const chunk of chunkByTokens(text, await this.tokenizer.tokenOffsetsAsync(text, model), options)) chunks.push(chunk);
    }
    if (chunks.length === 0) throw new BadRequestException('content has no text to embed (only whitespace)');
    const result = await this.embedTexts(
      chunks.map((chunk) => chunk.text),
      { userId: dto.userId, model, requestId, operationType: chunks.length > 1 ? 'batch_embedding' : 'embedding' },
    );
    const saved = dto.userId
      ? await this.resources.replace(dto.userId, dto.resourceId, model, chunks.map((chunk, index) => ({ ...chunk, vector: result.vectors[index] })))
      : { stored: 0, replaced: 0 };
    const usage = toRequestTokenUsage(result.spent);
    return {
      status: 'success',
      resource_id: dto.resourceId,
      embedding_id: dto.resourceId,
      embedding_tokens: usage.embedding_tokens,
      message: dto.userId ? 'Resource successfully embedded' : 'Resource successfully embedded; not stored for search (no userId)',
      texts: texts.length,
      chunks: chunks.length,
      stored_chunks: saved.stored,
      replaced_chunks: saved.replaced,
      cache_hits: result.cacheHits,
      model: result.model,
      token_usage: usage,
    };
  }

  async removeResource(userId: string, resourceId: string): Promise<DeleteResourceResponseDto> {
    const deleted = await this.resources.remove(userId, resourceId);
    if (deleted === 0) throw new NotFoundException(`user "${userId}" has no stored resource "${resourceId}"`);
    return { status: 'deleted', resource_id: resourceId, deleted_chunks: deleted };
  }

  /**
   * Embeds texts, taking what it can from the persistent cache (keyed by model, owner and
   * content hash); only the misses reach the provider and are billed and tracked. Each user
   * hits only on texts they embedded before: a cache shared across users would tell one user,
   * by hits, free tokens and speed, which texts another had embedded.
   */
  async embedTexts(
    texts: string[],
    context: { userId?: string; model?: string; requestId?: string; operationType: OperationType; budget?: RequestBudget },
  ): Promise<EmbedTextsResult> {
    const model = context.model ?? this.config.AI_EMBEDDING_MODEL;
    const owner = context.userId ?? '';
    const ids = texts.map((text) => `${model}|${owner}|${createHash('sha256').update(text).digest('hex')}`);
    const unique = [...new Set(ids)];
    const vectors = new Map<string, number[]>();
    // Vectors are large (a 1536-dimension one is ~20 KB of BSON or JSON): reading, embedding and
    // storing them a batch at a time keeps each step's hold on the event loop short.
    try {
      for (let start = 0; start < unique.length; start += VECTOR_BATCH) {
        const cached = await withinDeadline(this.cache.db, this.config.MONGODB_READ_TIMEOUT_MS, 'embedding cache read', () =>
          this.cache.collection.find({ _id: { $in: unique.slice(start, start + VECTOR_BATCH) } } as never).toArray(),
        );
        for (const entry of cached) vectors.set(String(entry._id), fromStoredVector(entry.vector));
      }
    } catch (error) {
      // MongoDB down or frozen: every text not read yet is a miss (embedded and billed) rather than an error.
      this.logger.warn(`Embedding cache not read (${(error as Error).message}); embedding the texts not found`);
    }

    const missing = unique.filter((id) => !vectors.has(id));
    const cacheHits = ids.filter((id) => vectors.has(id)).length;
    const spent: SpentUsage[] = [];
    const tracked: TrackResult[] = [];
    const textOf = new Map(ids.map((id, index) => [id, texts[index]]));
    for (let start = 0; start < missing.length; start += VECTOR_BATCH) {
      const batch = missing.slice(start, start + VECTOR_BATCH);
      const batchTexts = batch.map((id) => textOf.get(id)!);
      const operationType = batchTexts.length > 1 ? 'batch_embedding' : context.operationType === 'batch_embedding' ? 'embedding' : context.operationType;
      const embedded = await this.ai.embed(batchTexts, { userId: context.userId, model, requestId: context.requestId, operationType, budget: context.budget });
      spent.push({ promptTokens: 0, completionTokens: 0, embeddingTokens: embedded.usage.embeddingTokens, totalTokens: embedded.usage.totalTokens, costMicros: embedded.costMicros, estimated: embedded.usage.estimated });
      tracked.push(...embedded.tracked);
      const perText = Math.round(embedded.usage.embeddingTokens / batchTexts.length);
      batch.forEach((id, index) => vectors.set(id, embedded.vectors[index]));
      // The embeddings were billed: a cache that cannot be written never turns them into an error.
      await withinDeadline(this.cache.db, this.config.MONGODB_READ_TIMEOUT_MS, 'embedding cache write', () =>
        this.cache.collection.insertMany(
          batch.map((id, index) => ({ _id: id, model, vector: toStoredVector(embedded.vectors[index]), tokens: perText, createdAt: new Date() })) as never[],
          { ordered: false },
        ),
      ).catch((error: Error & { code?: number; writeErrors?: unknown }) => {
        // A concurrent request cached the same text first: its vector is as good as ours.
        if (error.code !== 11000 && !error.writeErrors) this.logger.warn(`Embedding cache not written (${error.message})`);
      });
    }
    await withinDeadline(this.stats.db, this.config.MONGODB_READ_TIMEOUT_MS, 'embedding cache stats write', () =>
      this.stats.collection.updateOne({ _id: STATS_ID } as never, { $inc: { hits: cacheHits, misses: ids.length - cacheHits } }, { upsert: true }),
    ).catch((error: Error) => this.logger.warn(`Embedding cache stats not written (${error.message})`));
    // The cache is keyed by the requested model, so a hit and a miss both report that name.
    return { vectors: ids.map((id) => vectors.get(id) as number[]), model, cacheHits, spent, tracked };
  }

  async cacheStats(): Promise<EmbeddingCacheStatsDto> {
    const [stats, entries] = await Promise.all([
      this.stats.collection.findOne({ _id: STATS_ID } as never),
      this.cache.collection.estimatedDocumentCount(),
    ]);
    const hits = (stats?.hits as number | undefined) ?? 0;
    const misses = (stats?.misses as number | undefined) ?? 0;
    return { hits, misses, hitRate: hits + misses === 0 ? 0 : hits / (hits + misses), entries };
  }
}
