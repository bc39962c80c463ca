import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { IsBoolean, IsNotEmpty, IsOptional, IsString, Matches, MaxLength } from 'class-validator';
import { USER_ID_MESSAGE, USER_ID_PATTERN } from '../../common/user-id';
import { MAX_PROMPT_LENGTH } from '../../plugin/dto/generate-plugin.dto';

export const CONVERSATION_ID_PATTERN = /^[A-Za-z0-9_.:-]{1,128}$/;

/** Seed 001's chat input: the same fields as /api/v1/orcha/chat, plus the conversation to continue. */
export class AssistantChatDto {
  @ApiProperty({ example: 'user123', pattern: USER_ID_PATTERN.source, description: 'Whose ledger the usage goes to; a user key may leave it out' })
  @Matches(USER_ID_PATTERN, { message: `user_id ${USER_ID_MESSAGE}` })
  user_id!: string;

  @ApiProperty({ example: 'Plan my study week', maxLength: MAX_PROMPT_LENGTH })
  @IsString()
  @IsNotEmpty()
  @MaxLength(MAX_PROMPT_LENGTH)
  message!: string;

  @ApiPropertyOptional({
    example: 'conv_045',
    pattern: CONVERSATION_ID_PATTERN.source,
    description: "Continue this conversation of the user (new if unknown); absent = a new conversation, whose id the answer carries",
  })
  @IsOptional()
  @Matches(CONVERSATION_ID_PATTERN, { message: `conversation_id must match ${CONVERSATION_ID_PATTERN.source}` })
  conversation_id?: string;

  @ApiPropertyOptional({ example: false, description: "Ground the answer on the user's embedded resources (retrieval costs an embedding unless cached)" })
  @IsOptional()
  @IsBoolean()
  use_rag?: boolean;
}
