import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { ArrayMaxSize, ArrayMinSize, IsArray, IsInt, IsNotEmpty, IsOptional, IsString, Matches, Max, MaxLength, Min } from 'class-validator';
import { USER_ID_MESSAGE, USER_ID_PATTERN } from '../../common/user-id';
import { RESOURCE_ID_PATTERN } from '../../embeddings/dto/embed-resource.dto';

export const SESSION_ID_PATTERN = /^[A-Za-z0-9_.:-]{1,128}$/;
export const MAX_QUERY_LENGTH = 8_000;
export const MAX_SEARCH_LIMIT = 50;

export class SemanticSearchDto {
  @ApiProperty({ example: 'What does the cell use for energy?', maxLength: MAX_QUERY_LENGTH })
  @IsString()
  @IsNotEmpty()
  @MaxLength(MAX_QUERY_LENGTH)
  query!: string;

  @ApiProperty({ example: 'user123', pattern: USER_ID_PATTERN.source, description: 'Whose resources are searched (and who is billed)' })
  @Matches(USER_ID_PATTERN, { message: `userId ${USER_ID_MESSAGE}` })
  userId!: string;

  @ApiPropertyOptional({ example: 5, minimum: 1, maximum: MAX_SEARCH_LIMIT, default: 5 })
  @IsOptional()
  @IsInt()
  @Min(1)
  @Max(MAX_SEARCH_LIMIT)
  limit: number = 5;

  @ApiPropertyOptional({ example: ['pdf_123'], description: "Search only these of the user's resources" })
  @IsOptional()
  @IsArray()
  @ArrayMinSize(1)
  @ArrayMaxSize(100)
  @Matches(RESOURCE_ID_PATTERN, { each: true, message: `each of resourceIds must match ${RESOURCE_ID_PATTERN.source}` })
  resourceIds?: string[];

  @ApiPropertyOptional({ example: 'tab-7f3a', pattern: SESSION_ID_PATTERN.source, description: "The client's session: repeated queries in it reuse their embedding" })
  @IsOptional()
  @Matches(SESSION_ID_PATTERN, { message: `sessionId must match ${SESSION_ID_PATTERN.source}` })
  sessionId?: string;
}
