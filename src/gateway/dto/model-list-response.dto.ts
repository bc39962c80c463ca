import { ApiProperty } from '@nestjs/swagger';

export class ModelDto {
  @ApiProperty({ example: 'openai/gpt-4o-mini' }) id!: string;
  @ApiProperty({ example: 'model', enum: ['model'] }) object!: string;
  @ApiProperty({ example: 1764979200, description: 'Unix seconds' }) created!: number;
  @ApiProperty({ example: 'openrouter', description: 'The configured provider ("simulated" when none is)' }) owned_by!: string;
}

/** The OpenAI model list: the configured primary, fallback and embedding models. */
export class ModelListResponseDto {
  @ApiProperty({ example: 'list', enum: ['list'] }) object!: string;
  @ApiProperty({ type: [ModelDto] }) data!: ModelDto[];
}
