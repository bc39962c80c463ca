import { BadRequestException, Injectable, Logger, NotFoundException } from '@nestjs/common';
import { InjectModel } from '@nestjs/mongoose';
import { createHash } from 'node:crypto';
import { Model } from 'mongoose';
import { AiService, SpentUsage } from '../ai/ai.service';
import { toRequestTokenUsage } from '../ai/dto/request-token-usage.dto';
import { TokenizerService } from '../ai/tokenizer.service';
import { withinDeadline } from '../common/deadline';
import { AppConfig } from '../config/app-config';
import type { OperationType, TrackResult } from '../token-tracking/usage-record';
import { DeleteResourceResponseDto } from './dto/delete-resource-response.dto';
import { EmbeddingCacheStatsDto, EmbedResourceResponseDto } from './dto/embed-resource-response.dto';
import { EmbedResourceDto } from './dto/embed-resource.dto';
import { EmbeddingCacheEntry, EmbeddingCacheStats } from './embedding-cache.schema';
import { ResourceChunksService } from './resource-chunks.service';
import { chunkByTokens } from './text-chunker';

const STATS_ID = 'embeddings';

export interface EmbedTextsResult {
  vectors: number[][];
  model: string;
  cacheHits: number;
  spent: SpentUsage[];
  tracked: TrackResult[];
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
    const chunks = texts.flatMap((text) => chunkByTokens(text, this.tokenizer.tokenOffsets(text, model), options));
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
   * Embeds texts, taking what it can from the persistent cache (keyed by model and
   * content hash); only the misses reach the provider and are billed and tracked.
   */
  async embedTexts(
    texts: string[],
    context: { userId?: string; model?: string; requestId?: string; operationType: OperationType },
  ): Promise<EmbedTextsResult> {
    const model = context.model ?? this.config.AI_EMBEDDING_MODEL;
    const ids = texts.map((text) => `${model}|${createHash('sha256').update(text).digest('hex')}`);
    // MongoDB down or frozen: every text is a miss (embedded and billed) rather than an error.
    const cached = await withinDeadline(this.cache.db, this.config.MONGODB_READ_TIMEOUT_MS, 'embedding cache read', () =>
      this.cache.collection.find({ _id: { $in: [...new Set(ids)] } } as never).toArray(),
    ).catch((error: Error) => {
      this.logger.warn(`Embedding cache not read (${error.message}); embedding every text`);
      return [];
    });
    const vectors = new Map(cached.map((entry) => [String(entry._id), entry.vector as number[]]));

    const missing = [...new Set(ids.filter((id) => !vectors.has(id)))];
    const cacheHits = ids.length - ids.filter((id) => !vectors.has(id)).length;
    let spent: SpentUsage[] = [];
    let tracked: TrackResult[] = [];
    let reportedModel = model;
    if (missing.length > 0) {
      const missingTexts = missing.map((id) => texts[ids.indexOf(id)]);
      const operationType = missingTexts.length > 1 ? 'batch_embedding' : context.operationType === 'batch_embedding' ? 'embedding' : context.operationType;
      const embedded = await this.ai.embed(missingTexts, { userId: context.userId, model, requestId: context.requestId, operationType });
      reportedModel = embedded.model;
      spent = [{ promptTokens: 0, completionTokens: 0, embeddingTokens: embedded.usage.embeddingTokens, totalTokens: embedded.usage.totalTokens, costMicros: embedded.costMicros, estimated: embedded.usage.estimated }];
      tracked = embedded.tracked;
      const perText = Math.round(embedded.usage.embeddingTokens / missingTexts.length);
      const now = new Date();
      missing.forEach((id, index) => vectors.set(id, embedded.vectors[index]));
      // The embeddings were billed: a cache that cannot be written never turns them into an error.
      await withinDeadline(this.cache.db, this.config.MONGODB_READ_TIMEOUT_MS, 'embedding cache write', () =>
        this.cache.collection.insertMany(
          missing.map((id, index) => ({ _id: id, model, vector: embedded.vectors[index], tokens: perText, createdAt: now })) as never[],
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
    return { vectors: ids.map((id) => vectors.get(id) as number[]), model: reportedModel, cacheHits, spent, tracked };
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
