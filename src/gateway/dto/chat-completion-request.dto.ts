import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { Type } from 'class-transformer';
import {
  ArrayMaxSize,
  ArrayMinSize,
  IsArray,
  IsBoolean,
  IsIn,
  IsInt,
  IsNumber,
  IsObject,
  IsOptional,
  IsString,
  Matches,
  Max,
  MaxLength,
  Min,
  ValidateNested,
} from 'class-validator';
import { USER_ID_MESSAGE, USER_ID_PATTERN } from '../../common/user-id';
import { MODEL_NAME_PATTERN } from '../../embeddings/dto/embed-resource.dto';

export const MAX_CHAT_MESSAGES = 500;
export const MAX_CHAT_CONTENT_LENGTH = 500_000;

export class ChatMessageInputDto {
  @ApiProperty({ enum: ['system', 'developer', 'user', 'assistant'], example: 'user' })
  @IsIn(['system', 'developer', 'user', 'assistant'])
  role!: 'system' | 'developer' | 'user' | 'assistant';

  @ApiProperty({ example: 'Say hello', maxLength: MAX_CHAT_CONTENT_LENGTH })
  @IsString({ message: 'content must be a string (multi-part content is not supported)' })
  @MaxLength(MAX_CHAT_CONTENT_LENGTH)
  content!: string;

  @ApiPropertyOptional({ example: 'alice' })
  @IsOptional()
  @Matches(/^[A-Za-z0-9_-]{1,64}$/, { message: 'name must match ^[A-Za-z0-9_-]{1,64}$' })
  name?: string;
}

export class StreamOptionsDto {
  @ApiPropertyOptional({ example: true })
  @IsOptional()
  @IsBoolean()
  include_usage?: boolean;
}

/** The OpenAI chat-completions request, limited to what the gateway can honour. */
export class ChatCompletionRequestDto {
  @ApiProperty({ example: 'openai/gpt-4o-mini' })
  @Matches(MODEL_NAME_PATTERN, { message: `model must match ${MODEL_NAME_PATTERN.source}` })
  model!: string;

  // Validating a message costs ~0.1 ms on the event loop: 500 stay within the ~50 ms a request may hold it.
  @ApiProperty({ type: [ChatMessageInputDto], minItems: 1, maxItems: MAX_CHAT_MESSAGES })
  @IsArray()
  @ArrayMinSize(1)
  @ArrayMaxSize(MAX_CHAT_MESSAGES)
  @ValidateNested({ each: true })
  @Type(() => ChatMessageInputDto)
  messages!: ChatMessageInputDto[];

  @ApiPropertyOptional({ example: false }) @IsOptional() @IsBoolean() stream?: boolean;

  @ApiPropertyOptional({ type: StreamOptionsDto })
  @IsOptional()
  @ValidateNested()
  @Type(() => StreamOptionsDto)
  stream_options?: StreamOptionsDto;

  @ApiPropertyOptional({ example: 256 }) @IsOptional() @IsInt() @Min(1) @Max(1_000_000) max_tokens?: number;
  @ApiPropertyOptional({ example: 256 }) @IsOptional() @IsInt() @Min(1) @Max(1_000_000) max_completion_tokens?: number;
  @ApiPropertyOptional({ example: 0.7 }) @IsOptional() @IsNumber() @Min(0) @Max(2) temperature?: number;

  @ApiPropertyOptional({ example: { type: 'json_object' } })
  @IsOptional()
  @IsObject()
  response_format?: { type?: string };

  @ApiPropertyOptional({ example: 'user123', description: 'Whose usage this is (required for service keys; user keys act as their own user)' })
  @IsOptional()
  @Matches(USER_ID_PATTERN, { message: `user ${USER_ID_MESSAGE}` })
  user?: string;
}
