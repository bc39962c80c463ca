import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { COST_SOURCES, OPERATION_TYPES, OperationType } from '../usage-record';

class UsageFiguresDto {
  @ApiProperty({ example: 8500 }) promptTokens!: number;
  @ApiProperty({ example: 7250 }) completionTokens!: number;
  @ApiProperty({ example: 0 }) embeddingTokens!: number;
  @ApiProperty({ example: 15750 }) totalTokens!: number;
  @ApiProperty({ example: 0.0085, description: 'Cost in USD (stored exactly as integer micro-USD)' }) costUsd!: number;
  @ApiProperty({ example: 42 }) requestCount!: number;
  @ApiProperty({
    example: { plugin_generation: 12, chat_intent: 30 },
    description: `Request count per operation type (${OPERATION_TYPES.join(', ')})`,
  })
  operations!: Partial<Record<OperationType, number>>;
}

export class UsageBucketDto extends UsageFiguresDto {
  @ApiPropertyOptional({ example: '2026-11-23', description: 'Day bucket (YYYY-MM-DD, in USAGE_TIMEZONE)' }) date?: string;
  @ApiPropertyOptional({ example: '2026-11', description: 'Month bucket (YYYY-MM, in USAGE_TIMEZONE)' }) month?: string;
}

export class RecentSessionDto {
  @ApiProperty({ enum: OPERATION_TYPES, example: 'plugin_generation' }) operationType!: OperationType;
  @ApiProperty({ example: 'openai/gpt-4o-mini' }) model!: string;
  @ApiProperty({ example: 'openrouter' }) provider!: string;
  @ApiProperty({ example: 150 }) promptTokens!: number;
  @ApiProperty({ example: 300 }) completionTokens!: number;
  @ApiProperty({ example: 0 }) embeddingTokens!: number;
  @ApiProperty({ example: 450 }) totalTokens!: number;
  @ApiProperty({ example: 0.000203 }) costUsd!: number;
  @ApiProperty({ enum: COST_SOURCES, example: 'catalog', description: 'What priced it: the provider\'s reported cost, our catalogue, genai-prices\' data, or nothing (cost 0)' }) costSource!: string;
  @ApiPropertyOptional({ example: 'catalog 2026-12-06.1', description: 'The price list (and its version) that priced it' }) priceVersion?: string;
  @ApiPropertyOptional({ example: 'gpt-4o-mini@2024-10-01', description: 'The price list entry used' }) priceEntry?: string;
  @ApiProperty({ example: false, description: 'True when counts came from the tokenizer, not the provider' }) estimated!: boolean;
  @ApiProperty({ example: 1840 }) latencyMs!: number;
  @ApiProperty({ example: true }) success!: boolean;
  @ApiPropertyOptional({ example: 'fallback used: primary timed out' }) errorMessage?: string;
  @ApiPropertyOptional({ example: '6f1c7c1e-0d0a-4b8e-9d8b-2f3f1b1b4c11' }) requestId?: string;
  @ApiProperty({ example: '2026-11-23T10:30:00.000Z' }) timestamp!: string;
}

export class UserTokenUsageResponseDto {
  @ApiProperty({ example: 'user123' }) userId!: string;
  @ApiProperty({ example: 15750 }) totalTokens!: number;
  @ApiProperty({ example: 8500 }) promptTokens!: number;
  @ApiProperty({ example: 7250 }) completionTokens!: number;
  @ApiProperty({ example: 0 }) embeddingTokens!: number;
  @ApiProperty({ example: 42 }) requestCount!: number;
  @ApiProperty({ example: 0.1315, description: 'All-time cost in USD' }) costUsd!: number;
  @ApiProperty({ type: [UsageBucketDto], description: 'Per-day rollups, oldest first' }) dailyUsage!: UsageBucketDto[];
  @ApiProperty({ type: [UsageBucketDto], description: 'Per-month rollups, oldest first' }) monthlyUsage!: UsageBucketDto[];
  @ApiProperty({ example: '2026-06-01T08:00:00.000Z', nullable: true, type: String }) firstRequestAt!: string | null;
  @ApiProperty({ example: '2026-11-23T10:30:00.000Z', nullable: true, type: String }) lastRequestAt!: string | null;
  @ApiProperty({ type: [RecentSessionDto], description: 'Most recent requests, newest first' }) recentSessions!: RecentSessionDto[];
}
