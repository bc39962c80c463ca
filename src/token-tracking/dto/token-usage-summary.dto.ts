import { ApiProperty } from '@nestjs/swagger';

/** The per-request `tokenUsage` object the AI, chat and plugin endpoints return. */
export class TokenUsageSummaryDto {
  @ApiProperty({ example: 8500, description: "User's all-time prompt tokens after this request" }) promptTokens!: number;
  @ApiProperty({ example: 7250, description: "User's all-time completion tokens after this request" }) completionTokens!: number;
  @ApiProperty({ example: 15750, description: "User's all-time total tokens after this request" }) totalTokens!: number;
  @ApiProperty({ example: 42, description: "User's all-time tracked request count after this request" }) requestCount!: number;
  @ApiProperty({ example: 450, description: 'Tokens used by this request (every provider call it made)' })
  tokensUsedThisRequest!: number;
  @ApiProperty({ example: true, description: 'False when the ledger could not be written; figures then cover this request only' })
  trackingEnabled!: boolean;
}
