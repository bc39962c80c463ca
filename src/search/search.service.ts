import { Injectable } from '@nestjs/common';
import type { SpentUsage } from '../ai/ai.service';
import { toRequestTokenUsage } from '../ai/dto/request-token-usage.dto';
import { AppConfig } from '../config/app-config';
import { EmbeddingsService } from '../embeddings/embeddings.service';
import { ResourceChunksService, ScoredChunk } from '../embeddings/resource-chunks.service';
import type { RequestBudget } from '../limits/request-budget';
import type { TrackResult } from '../token-tracking/usage-record';
import { SearchCacheStatsDto, SearchCacheOutcomeDto, SemanticSearchResponseDto } from './dto/search-responses.dto';
import { QueryEmbeddingSource, SearchCacheService } from './search-cache.service';
import { normaliseQuery, sha256 } from './search-query';
import { VectorSearchService } from './vector-search.service';

export interface SearchInput {
  query: string;
  userId: string;
  limit: number;
  resourceIds?: string[];
  sessionId?: string;
}

export interface SearchOutcome {
  hits: readonly ScoredChunk[];
  model: string;
  cache: SearchCacheOutcomeDto;
  /** The query embedding's usage: empty when a cache answered. */
  spent: SpentUsage[];
  tracked: TrackResult[];
}

interface QueryVector {
  vector: ArrayLike<number>;
  source: QueryEmbeddingSource;
  spent: SpentUsage[];
  tracked: TrackResult[];
}

/**
 * Semantic search over one user's stored chunks. Cheapest first: whole results cached for
 * SEARCH_RESULT_CACHE_MS (keyed by the user's chunk version, so any write invalidates
 * them), then the query embedding from the session cache, then from the persistent
 * embedding cache, and only then from the provider (an `embedding` operation). A user with
 * nothing stored is answered without any embedding.
 */
@Injectable()
export class SearchService {
  constructor(
    private readonly embeddings: EmbeddingsService,
    private readonly chunks: ResourceChunksService,
    private readonly vectors: VectorSearchService,
    private readonly cache: SearchCacheService,
    private readonly config: AppConfig,
  ) {}

  async semanticSearch(input: SearchInput, requestId?: string): Promise<SemanticSearchResponseDto> {
    const outcome = await this.search(input, requestId);
    return {
      query: input.query,
      results: outcome.hits.map((hit) => ({ resource_id: hit.resourceId, chunk_index: hit.chunkIndex, score: hit.score, text: hit.text })),
      model: outcome.model,
      cache: outcome.cache,
      token_usage: toRequestTokenUsage(outcome.spent),
    };
  }

  /** `budget`: parts the caller reserved for its whole request; the query embedding takes its `embedding` part. */
  async search(input: SearchInput, requestId?: string, budget?: RequestBudget): Promise<SearchOutcome> {
    const model = this.config.AI_EMBEDDING_MODEL;
    const normalised = normaliseQuery(input.query);
    const queryHash = sha256(normalised);
    // Read before anything else: results and matrices are labelled with the version they were built from.
    const version = await this.chunks.version(input.userId);
    const resourceIds = input.resourceIds ? [...new Set(input.resourceIds)].sort() : undefined;
    const resultKey = JSON.stringify([input.userId, version, model, queryHash, input.limit, resourceIds ?? null]);

    const cached = this.cache.cachedResults(resultKey);
    if (cached) {
      this.cache.recordSearch(true);
      return { hits: cached, model, cache: { query_embedding: 'skipped', results: 'hit' }, spent: [], tracked: [] };
    }
    const results = this.cache.resultCacheEnabled ? 'miss' : 'disabled';
    if (!(await this.vectors.hasVectors(input.userId, model, version))) {
      this.cache.recordSearch(true);
      return { hits: [], model, cache: { query_embedding: 'skipped', results }, spent: [], tracked: [] };
    }
    const query = await this.queryVector(normalised, queryHash, model, input, requestId, budget);
    const hits = await this.vectors.nearest({ userId: input.userId, model, vector: query.vector, limit: input.limit, resourceIds, version });
    this.cache.rememberResults(resultKey, hits);
    this.cache.recordSearch(query.source !== 'miss');
    return {
      hits,
      model,
      cache: { query_embedding: query.source, results },
      spent: query.spent,
      tracked: query.tracked,
    };
  }

  async cacheStats(): Promise<SearchCacheStatsDto> {
    const snapshot = this.cache.snapshot();
    const persistent = await this.embeddings.cacheStats();
    return { ...snapshot, persistent: { ...snapshot.persistent, entries: persistent.entries }, vectorIndex: this.vectors.stats() };
  }

  /** The normalised query is what gets embedded, so every spelling of it shares one vector. */
  private async queryVector(normalised: string, queryHash: string, model: string, input: SearchInput, requestId?: string, budget?: RequestBudget): Promise<QueryVector> {
    const sessionKey = input.sessionId ? { userId: input.userId, sessionId: input.sessionId, model, queryHash } : undefined;
    const remembered = sessionKey && this.cache.sessionVector(sessionKey);
    if (remembered) return { vector: remembered, source: 'session', spent: [], tracked: [] };

    const embedded = await this.embeddings.embedTexts([normalised], { userId: input.userId, model, requestId, operationType: 'embedding', budget });
    const hit = embedded.cacheHits > 0;
    this.cache.recordPersistentLookup(hit);
    if (sessionKey) this.cache.rememberSessionVector(sessionKey, embedded.vectors[0]);
    return { vector: embedded.vectors[0], source: hit ? 'persistent' : 'miss', spent: embedded.spent, tracked: embedded.tracked };
  }
}
