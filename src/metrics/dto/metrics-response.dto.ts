import { ApiProperty } from '@nestjs/swagger';

export class MetricsTokenUsageDto {
  @ApiProperty({ example: 187500 }) total_prompt_tokens!: number;
  @ApiProperty({ example: 67500 }) total_completion_tokens!: number;
  @ApiProperty({ example: 125000 }) total_embedding_tokens!: number;
  @ApiProperty({ example: 1.25, description: 'USD' }) total_cost_usd!: number;
}

/** GET /metrics as JSON (seed 001). Counts are since this process started. */
export class MetricsResponseDto {
  @ApiProperty({ example: 150, description: 'HTTP requests served (health, docs and metrics endpoints excluded)' }) requests_total!: number;
  @ApiProperty({ example: 2, description: 'Of those, responses with a 5xx status' }) errors_total!: number;
  @ApiProperty({ example: 1200.5 }) avg_latency_ms!: number;
  @ApiProperty({
    example: { intent: 25, response: 100, embedding: 10, tool: 15 },
    description: 'Recorded AI operations by pipeline stage (thinking, intent, response, embedding, tool)',
    type: 'object',
    additionalProperties: { type: 'number' },
  })
  stage_distribution!: Record<string, number>;
  @ApiProperty({
    example: { info: 20, modification: 5 },
    description: 'Plugin chat messages answered, by the intent the classifier decided',
    type: 'object',
    additionalProperties: { type: 'number' },
  })
  intent_frequency!: Record<string, number>;
  @ApiProperty({ type: MetricsTokenUsageDto }) token_usage!: MetricsTokenUsageDto;
}
