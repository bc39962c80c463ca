import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { RagSourceDto } from '../../search/dto/search-responses.dto';

/** `token_usage` of /api/v1/orcha/chat: the rolling window plus this request's provider usage. */
export class OrchaTokenUsageDto {
  @ApiProperty({ example: 1523, description: 'Tokens used in the last 24 hours (rolling window)' }) current_usage!: number;
  @ApiProperty({ example: 245, description: 'Tokens consumed by this request' }) tokens_added!: number;
  @ApiProperty({ example: '2026-11-24T14:30:00.000Z', nullable: true, type: String, description: 'When the window resets' }) reset_at!: string | null;
  @ApiProperty({ example: true, description: 'Whether rolling-window tracking is active (requires Redis)' }) tracking_enabled!: boolean;
  @ApiProperty({ example: 200 }) prompt_tokens!: number;
  @ApiProperty({ example: 45 }) completion_tokens!: number;
  @ApiProperty({ example: 245 }) total_tokens!: number;
  @ApiProperty({ example: 0 }) embedding_tokens!: number;
  @ApiProperty({ example: 0.0000571 }) cost_estimate_usd!: number;
  @ApiProperty({ example: false }) estimated!: boolean;
}

export class OrchaChatResponseDto {
  @ApiProperty({ example: 'ok' }) status!: 'ok';
  @ApiProperty({ example: "Assistant's response..." }) message!: string;
  @ApiProperty({ example: 'openai/gpt-4o-mini', description: '"simulated" when no provider is configured' }) model!: string;
  @ApiProperty({ example: 'openrouter' }) provider!: string;
  @ApiPropertyOptional({ type: [RagSourceDto], description: "With use_rag: the passages of the user's resources given to the model (may be empty)" })
  sources?: RagSourceDto[];
  @ApiProperty({ type: OrchaTokenUsageDto, description: 'tokens_added covers every provider call of the request (with use_rag: the search embedding and the answer)' })
  token_usage!: OrchaTokenUsageDto;
}
