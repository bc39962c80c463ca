import { ApiProperty } from '@nestjs/swagger';
import { microsToUsd } from '../../common/money';
import type { SpentUsage } from '../ai.service';

/** The per-request `token_usage` object: what this request's provider calls consumed. */
export class RequestTokenUsageDto {
  @ApiProperty({ example: 1250 }) prompt_tokens!: number;
  @ApiProperty({ example: 450 }) completion_tokens!: number;
  @ApiProperty({ example: 1700 }) total_tokens!: number;
  @ApiProperty({ example: 0 }) embedding_tokens!: number;
  @ApiProperty({ example: 0.0085, description: 'USD; provider-reported cost when available, else the price catalog' })
  cost_estimate_usd!: number;
  @ApiProperty({ example: false, description: 'True when any count came from the tokenizer instead of the provider' })
  estimated!: boolean;
}

export function toRequestTokenUsage(parts: readonly SpentUsage[]): RequestTokenUsageDto {
  const sum = (pick: (part: SpentUsage) => number) => parts.reduce((total, part) => total + pick(part), 0);
  return {
    prompt_tokens: sum((part) => part.promptTokens),
    completion_tokens: sum((part) => part.completionTokens),
    total_tokens: sum((part) => part.totalTokens),
    embedding_tokens: sum((part) => part.embeddingTokens),
    cost_estimate_usd: microsToUsd(sum((part) => part.costMicros)),
    estimated: parts.some((part) => part.estimated),
  };
}
