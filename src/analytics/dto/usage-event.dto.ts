import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { COST_SOURCES, OPERATION_TYPES } from '../../token-tracking/usage-record';

/** One usage event: seed 004's log fields, then what the ledger adds. */
export class UsageEventDto {
  @ApiProperty({ example: '2026-05-04T10:30:45.123Z' }) timestamp!: string;
  @ApiProperty({ example: 'user123', nullable: true, type: String }) user_id!: string | null;
  @ApiProperty({ enum: OPERATION_TYPES, example: 'rag_answer' }) operation_type!: string;
  @ApiPropertyOptional({ example: 'What is the meaning of life?', description: 'First 500 characters; absent when LOG_QUERIES=false' }) query?: string;
  @ApiProperty({ example: 'openai/gpt-4o-mini' }) model_name!: string;
  @ApiProperty({ example: 1250 }) prompt_tokens!: number;
  @ApiProperty({ example: 150 }) completion_tokens!: number;
  @ApiProperty({ example: 1400 }) total_tokens!: number;
  @ApiProperty({ example: 0.000285, description: 'USD (display)' }) cost_estimate!: number;
  @ApiProperty({ example: 2.34, description: 'Seconds' }) response_time!: number;
  @ApiProperty({ example: true }) success!: boolean;
  @ApiProperty({ example: null, nullable: true, type: String }) error_message!: string | null;
  @ApiProperty({ example: '5f0c3c1e-8f0e-4d55-9a3e-7c1d2b3a4f5e', description: 'The usage record id (idempotency key)' }) record_id!: string;
  @ApiProperty({ example: 'openrouter' }) provider!: string;
  @ApiProperty({ example: 'FREE' }) tier!: string;
  @ApiProperty({ example: 0 }) embedding_tokens!: number;
  @ApiProperty({ example: 285, description: 'Integer micro-USD (the stored amount)' }) cost_micros!: number;
  @ApiProperty({ enum: [...COST_SOURCES, 'none'], example: 'catalog', description: 'What priced it' }) costSource!: string;
  @ApiPropertyOptional({ example: 'catalog 2026-12-06.1', description: 'The price list (and its version) that priced it' }) priceVersion?: string;
  @ApiPropertyOptional({ example: 'gpt-4o-mini@2024-10-01', description: 'The price list entry used' }) priceEntry?: string;
  @ApiPropertyOptional({ example: 1024, description: 'Part of prompt_tokens read from the prompt cache' }) cachedTokens?: number;
  @ApiPropertyOptional({ example: 0, description: 'Part of prompt_tokens written to the prompt cache' }) cacheWriteTokens?: number;
  @ApiPropertyOptional({ example: 0, description: 'Part of completion_tokens spent on reasoning' }) reasoningTokens?: number;
  @ApiPropertyOptional({ example: 570, description: 'Set by re-pricing: the cost (integer micro-USD) before it' }) previousCostMicros?: number;
  @ApiPropertyOptional({ example: '2026-12-06T09:00:00.000Z', description: 'Set by re-pricing: when the cost changed' }) repricedAt?: string;
  @ApiProperty({ example: false, description: 'Counts came from the tokenizer, not the provider' }) estimated!: boolean;
  @ApiProperty({ example: false }) cacheHit!: boolean;
  @ApiProperty({ example: 'b7e1c2d4-...', nullable: true, type: String }) requestId!: string | null;
  @ApiPropertyOptional({ example: 'generate_image', description: 'Tool calls only' }) tool_name?: string;
}
