import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { IsNotEmpty, IsOptional, IsString, Matches, MaxLength } from 'class-validator';
import { USER_ID_MESSAGE, USER_ID_PATTERN } from '../../common/user-id';
import { MAX_PROMPT_LENGTH, PLUGIN_NAME_PATTERN } from '../../plugin/dto/generate-plugin.dto';

export class ChatMessageDto {
  @ApiProperty({ example: 'How do I add a command to my plugin?', maxLength: MAX_PROMPT_LENGTH })
  @IsString()
  @IsNotEmpty()
  @MaxLength(MAX_PROMPT_LENGTH)
  message!: string;

  @ApiProperty({ example: 'user123', pattern: USER_ID_PATTERN.source, description: 'Tracked as the userId' })
  @Matches(USER_ID_PATTERN, { message: `username ${USER_ID_MESSAGE}` })
  username!: string;

  @ApiPropertyOptional({ example: 'MyPlugin', pattern: PLUGIN_NAME_PATTERN.source })
  @IsOptional()
  @Matches(PLUGIN_NAME_PATTERN, { message: `pluginName must match ${PLUGIN_NAME_PATTERN.source}` })
  pluginName?: string;
}
