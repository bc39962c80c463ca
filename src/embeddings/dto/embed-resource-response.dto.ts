import { ApiProperty } from '@nestjs/swagger';
import { RequestTokenUsageDto } from '../../ai/dto/request-token-usage.dto';

export class EmbedResourceResponseDto {
  @ApiProperty({ example: 'success' }) status!: 'success';
  @ApiProperty({ example: 'pdf_123' }) resource_id!: string;
  @ApiProperty({ example: 'pdf_123' }) embedding_id!: string;
  @ApiProperty({ example: 2500, description: 'Tokens the provider billed for this request (cache hits cost none)' }) embedding_tokens!: number;
  @ApiProperty({ example: 'Resource successfully embedded' }) message!: string;
  @ApiProperty({ example: 3, description: 'Texts embedded' }) texts!: number;
  @ApiProperty({ example: 7, description: 'Token chunks the texts were split into (EMBED_CHUNK_TOKENS, overlapping by EMBED_CHUNK_OVERLAP)' })
  chunks!: number;
  @ApiProperty({ example: 7, description: 'Chunks stored for search; 0 when no userId was given (embedded, not stored)' })
  stored_chunks!: number;
  @ApiProperty({ example: 5, description: 'Chunks of an earlier embedding of this resource that the new ones replaced' })
  replaced_chunks!: number;
  @ApiProperty({ example: 1, description: 'Chunks served from the embedding cache' }) cache_hits!: number;
  @ApiProperty({ example: 'openai/text-embedding-3-small' }) model!: string;
  @ApiProperty({ type: RequestTokenUsageDto }) token_usage!: RequestTokenUsageDto;
}

export class EmbeddingCacheStatsDto {
  @ApiProperty({ example: 120 }) hits!: number;
  @ApiProperty({ example: 40 }) misses!: number;
  @ApiProperty({ example: 0.75, description: 'hits / (hits + misses); 0 before any lookup' }) hitRate!: number;
  @ApiProperty({ example: 40 }) entries!: number;
}
