import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { IsBoolean, IsInt, IsNotEmpty, IsOptional, IsString, Matches, Max, MaxLength, Min } from 'class-validator';
import { USER_ID_MESSAGE, USER_ID_PATTERN } from '../../common/user-id';

export const PLUGIN_NAME_PATTERN = /^[A-Za-z][A-Za-z0-9_]{0,63}$/;
export const MAX_PROMPT_LENGTH = 20_000;

export class GeneratePluginOptionsDto {
  @ApiProperty({ example: 'Create a plugin that teleports a player home with /home', maxLength: MAX_PROMPT_LENGTH })
  @IsString()
  @IsNotEmpty()
  @MaxLength(MAX_PROMPT_LENGTH)
  prompt!: string;

  @ApiPropertyOptional({ example: 'MyPlugin', pattern: PLUGIN_NAME_PATTERN.source })
  @IsOptional()
  @Matches(PLUGIN_NAME_PATTERN, { message: `name must match ${PLUGIN_NAME_PATTERN.source}` })
  name?: string;

  @ApiPropertyOptional({ example: true, description: 'Compile the generated project (only /plugin/generate honours it)' })
  @IsOptional()
  @IsBoolean()
  autoCompile?: boolean;

  @ApiPropertyOptional({ example: 7, minimum: 1, maximum: 10, description: 'How elaborate the plugin should be' })
  @IsOptional()
  @IsInt()
  @Min(1)
  @Max(10)
  complexity?: number;
}

/** POST /plugin/generate: userId is required and the usage is always tracked. */
export class GeneratePluginDto extends GeneratePluginOptionsDto {
  @ApiProperty({ example: 'user123', pattern: USER_ID_PATTERN.source })
  @Matches(USER_ID_PATTERN, { message: `userId ${USER_ID_MESSAGE}` })
  userId!: string;
}

/** POST /plugin/generate-and-compile and /plugin/generate-only: tracked only when userId is given. */
export class GeneratePluginOptionalUserDto extends GeneratePluginOptionsDto {
  @ApiPropertyOptional({ example: 'user123', pattern: USER_ID_PATTERN.source })
  @IsOptional()
  @Matches(USER_ID_PATTERN, { message: `userId ${USER_ID_MESSAGE}` })
  userId?: string;
}
