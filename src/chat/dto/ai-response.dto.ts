import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { RequestTokenUsageDto } from '../../ai/dto/request-token-usage.dto';
import { RagSourceDto } from '../../search/dto/search-responses.dto';

export const AI_RESPONSE_STAGES = ['thinking', 'intent', 'response', 'complete'] as const;
export const AI_INTENTS = ['backend_query', 'proposed_schedule', 'proposed_tasks'] as const;

/** Seed 001's AIResponse. */
export class AiResponseDto {
  @ApiProperty({ enum: AI_RESPONSE_STAGES, example: 'response', description: 'A complete answer is always at stage response' })
  stage!: (typeof AI_RESPONSE_STAGES)[number];

  @ApiProperty({ example: 'conv_045', description: 'The conversation this turn belongs to; send it back to continue' })
  conversation_id!: string;

  @ApiProperty({ example: "Here's your study schedule for this week...", nullable: true, type: String })
  text!: string | null;

  @ApiProperty({ type: 'array', items: { type: 'object', additionalProperties: true }, nullable: true, example: [], description: 'Structured blocks; none are produced yet (empty)' })
  blocks!: Array<Record<string, unknown>> | null;

  @ApiProperty({ enum: AI_INTENTS, nullable: true, example: null, description: 'A proposed action; null for a plain answer' })
  intent!: (typeof AI_INTENTS)[number] | null;

  @ApiProperty({ example: '2025-01-27T10:30:00.000Z', description: 'When the answer was made (ISO 8601, UTC)' })
  timestamp!: string;

  @ApiProperty({ type: RequestTokenUsageDto, description: 'What this request consumed (with use_rag: the search embedding and the answer)' })
  token_usage!: RequestTokenUsageDto;

  @ApiProperty({ example: 'openai/gpt-4o-mini', description: '"simulated" when no provider is configured' })
  model!: string;

  @ApiProperty({ example: 'openrouter' })
  provider!: string;

  @ApiPropertyOptional({ type: [RagSourceDto], description: "With use_rag: the passages of the user's resources given to the model (may be empty)" })
  sources?: RagSourceDto[];
}
