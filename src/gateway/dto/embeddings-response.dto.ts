import { ApiProperty } from '@nestjs/swagger';

export class EmbeddingDto {
  @ApiProperty({ example: 'embedding', enum: ['embedding'] }) object!: string;
  @ApiProperty({ example: 0 }) index!: number;
  @ApiProperty({
    oneOf: [{ type: 'array', items: { type: 'number' } }, { type: 'string', description: 'base64 of little-endian float32 values' }],
    example: [0.0023, -0.0094, 0.0151],
    description: 'Numbers, or a base64 string with encoding_format base64',
  })
  embedding!: number[] | string;
}

export class EmbeddingsUsageDto {
  @ApiProperty({ example: 8, description: 'Tokens billed for this request (0 for cached texts)' }) prompt_tokens!: number;
  @ApiProperty({ example: 8 }) total_tokens!: number;
}

/** The OpenAI embeddings list; the ledger's figures are in the x-token-ledger-* headers. */
export class EmbeddingsResponseDto {
  @ApiProperty({ example: 'list', enum: ['list'] }) object!: string;
  @ApiProperty({ type: [EmbeddingDto] }) data!: EmbeddingDto[];
  @ApiProperty({ example: 'text-embedding-3-small' }) model!: string;
  @ApiProperty({ type: EmbeddingsUsageDto }) usage!: EmbeddingsUsageDto;
}
