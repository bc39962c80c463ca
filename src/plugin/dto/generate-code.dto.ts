import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { IsNotEmpty, IsOptional, IsString, Matches, MaxLength } from 'class-validator';
import { USER_ID_MESSAGE, USER_ID_PATTERN } from '../../common/user-id';
import { MAX_PROMPT_LENGTH, PLUGIN_NAME_PATTERN } from './generate-plugin.dto';

export class GenerateCodeDto {
  @ApiProperty({ example: 'Create a teleportation system', maxLength: MAX_PROMPT_LENGTH })
  @IsString()
  @IsNotEmpty()
  @MaxLength(MAX_PROMPT_LENGTH)
  prompt!: string;

  @ApiProperty({ example: 'TeleportPlugin', pattern: PLUGIN_NAME_PATTERN.source })
  @Matches(PLUGIN_NAME_PATTERN, { message: `pluginName must match ${PLUGIN_NAME_PATTERN.source}` })
  pluginName!: string;

  @ApiPropertyOptional({ example: 'user123', pattern: USER_ID_PATTERN.source, description: 'Track usage for this user' })
  @IsOptional()
  @Matches(USER_ID_PATTERN, { message: `userId ${USER_ID_MESSAGE}` })
  userId?: string;
}
