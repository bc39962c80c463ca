import { ApiProperty } from '@nestjs/swagger';
import { RequestTokenUsageDto } from '../../ai/dto/request-token-usage.dto';

export class SearchCacheOutcomeDto {
  @ApiProperty({
    enum: ['session', 'persistent', 'miss', 'skipped'],
    description: 'Where the query embedding came from: the session cache, the persistent cache (both free), the provider (miss), or not needed (skipped: the results were cached, or the user has nothing stored to search)',
  })
  query_embedding!: 'session' | 'persistent' | 'miss' | 'skipped';

  @ApiProperty({ enum: ['hit', 'miss', 'disabled'], description: 'Whether the whole result came from the result cache' })
  results!: 'hit' | 'miss' | 'disabled';
}

export class SearchResultDto {
  @ApiProperty({ example: 'pdf_123' }) resource_id!: string;
  @ApiProperty({ example: 0 }) chunk_index!: number;
  @ApiProperty({ example: 0.83, description: 'Cosine similarity to the query, -1..1' }) score!: number;
  @ApiProperty({ example: 'The mitochondria is the powerhouse of the cell.' }) text!: string;
}

export class SemanticSearchResponseDto {
  @ApiProperty({ example: 'What does the cell use for energy?' }) query!: string;
  @ApiProperty({ type: [SearchResultDto], description: 'Nearest chunks of this user, best first' }) results!: SearchResultDto[];
  @ApiProperty({ example: 'openai/text-embedding-3-small', description: 'Embedding model of the query and the searched chunks' }) model!: string;
  @ApiProperty({ type: SearchCacheOutcomeDto }) cache!: SearchCacheOutcomeDto;
  @ApiProperty({ type: RequestTokenUsageDto, description: 'The query embedding (0 tokens on a cache hit)' }) token_usage!: RequestTokenUsageDto;
}

export class RagSourceDto {
  @ApiProperty({ example: 'pdf_123' }) resource_id!: string;
  @ApiProperty({ example: 0 }) chunk_index!: number;
  @ApiProperty({ example: 0.83 }) score!: number;
}

export class RagAnswerResponseDto {
  @ApiProperty({ example: 'Cells make their energy in the mitochondria [pdf_123].' }) answer!: string;
  @ApiProperty({ type: [RagSourceDto], description: 'The chunks given to the model as context; empty when none was relevant (then no model is asked)' })
  sources!: RagSourceDto[];
  @ApiProperty({ example: 'openai/gpt-4o-mini', nullable: true, type: String, description: 'null when no chunk was relevant and no model was asked' })
  model!: string | null;
  @ApiProperty({ example: 'openrouter', nullable: true, type: String }) provider!: string | null;
  @ApiProperty({ type: SearchCacheOutcomeDto }) cache!: SearchCacheOutcomeDto;
  @ApiProperty({ type: RequestTokenUsageDto, description: 'The search embedding and the answer together' }) token_usage!: RequestTokenUsageDto;
}

export class CacheLayerStatsDto {
  @ApiProperty({ example: 120 }) lookups!: number;
  @ApiProperty({ example: 54 }) hits!: number;
  @ApiProperty({ example: 0.45, description: 'hits / lookups; 0 before any lookup' }) hitRate!: number;
}

export class InProcessCacheStatsDto extends CacheLayerStatsDto {
  @ApiProperty({ example: 45 }) entries!: number;
  @ApiProperty({ example: true }) enabled!: boolean;
}

export class PersistentCacheStatsDto extends CacheLayerStatsDto {
  @ApiProperty({ example: 1234, description: 'Entries of the persistent embedding cache (embedding_cache: resource chunks and normalised queries)' })
  entries!: number;
}

export class VectorIndexStatsDto {
  @ApiProperty({ enum: ['inprocess', 'atlas'] }) mode!: 'inprocess' | 'atlas';
  @ApiProperty({ example: 3, description: "Users' vector matrices held in this process" }) matrices!: number;
  @ApiProperty({ example: 12000 }) vectors!: number;
  @ApiProperty({ example: 73728000 }) bytes!: number;
  @ApiProperty({ example: 536870912, description: 'VECTOR_INDEX_MAX_MB in bytes' }) maxBytes!: number;
}

export class SearchCacheStatsDto {
  @ApiProperty({ example: '2026-11-23T08:00:00.000Z', description: 'Counters are per process, since this time' }) since!: string;
  @ApiProperty({ example: 200, description: 'Searches, RAG retrievals included' }) searches!: number;
  @ApiProperty({ example: 170, description: 'Searches that cost no embedding tokens' }) tokenFreeSearches!: number;
  @ApiProperty({ example: 0.852, description: 'tokenFreeSearches / searches' }) hitRate!: number;
  @ApiProperty({ type: InProcessCacheStatsDto, description: 'Query embeddings per client session (in process)' }) session!: InProcessCacheStatsDto;
  @ApiProperty({ type: PersistentCacheStatsDto, description: 'Query embeddings by model and normalised query (MongoDB)' }) persistent!: PersistentCacheStatsDto;
  @ApiProperty({ type: InProcessCacheStatsDto, description: 'Whole results (in process, SEARCH_RESULT_CACHE_MS)' }) results!: InProcessCacheStatsDto;
  @ApiProperty({ type: VectorIndexStatsDto }) vectorIndex!: VectorIndexStatsDto;
}
