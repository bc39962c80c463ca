import { ApiProperty } from '@nestjs/swagger';

export class CompletionMessageDto {
  @ApiProperty({ example: 'assistant', enum: ['assistant'] }) role!: string;
  @ApiProperty({ example: 'Hello! How can I help?' }) content!: string;
  @ApiProperty({ example: null, nullable: true, type: String }) refusal!: string | null;
}

export class CompletionChoiceDto {
  @ApiProperty({ example: 0 }) index!: number;
  @ApiProperty({ type: CompletionMessageDto }) message!: CompletionMessageDto;
  @ApiProperty({ example: null, nullable: true, type: Object }) logprobs!: null;
  @ApiProperty({ example: 'stop', description: 'stop, length, content_filter, ... as the provider reported it' }) finish_reason!: string;
}

export class CompletionUsageDto {
  @ApiProperty({ example: 12 }) prompt_tokens!: number;
  @ApiProperty({ example: 9 }) completion_tokens!: number;
  @ApiProperty({ example: 21 }) total_tokens!: number;
}

/** The OpenAI chat.completion object; the ledger's figures are in the x-token-ledger-* headers. */
export class ChatCompletionResponseDto {
  @ApiProperty({ example: 'chatcmpl-6f1d7a52-9c1e-4f5b-8a43-2f0e8c1b9d77' }) id!: string;
  @ApiProperty({ example: 'chat.completion', enum: ['chat.completion'] }) object!: string;
  @ApiProperty({ example: 1764979200, description: 'Unix seconds' }) created!: number;
  @ApiProperty({ example: 'openai/gpt-4o-mini', description: 'The model that answered' }) model!: string;
  @ApiProperty({ type: [CompletionChoiceDto] }) choices!: CompletionChoiceDto[];
  @ApiProperty({ type: CompletionUsageDto, description: "The answering call's usage as the provider reported it (tokenizer estimate when it did not)" })
  usage!: CompletionUsageDto;
  @ApiProperty({ example: null, nullable: true, type: String }) system_fingerprint!: string | null;
}
