import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { IsBoolean, IsNotEmpty, IsOptional, IsString, Matches, MaxLength } from 'class-validator';
import { USER_ID_MESSAGE, USER_ID_PATTERN } from '../../common/user-id';
import { MAX_PROMPT_LENGTH } from '../../plugin/dto/generate-plugin.dto';

export class OrchaChatDto {
  @ApiProperty({ example: 'user123', pattern: USER_ID_PATTERN.source })
  @Matches(USER_ID_PATTERN, { message: `user_id ${USER_ID_MESSAGE}` })
  user_id!: string;

  @ApiProperty({ example: 'Hello', maxLength: MAX_PROMPT_LENGTH })
  @IsString()
  @IsNotEmpty()
  @MaxLength(MAX_PROMPT_LENGTH)
  message!: string;

  @ApiPropertyOptional({ example: false, description: "Ground the answer on the user's embedded resources (retrieval costs an embedding unless cached)" })
  @IsOptional()
  @IsBoolean()
  use_rag?: boolean;
}
