import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import {
  ArrayMaxSize,
  ArrayMinSize,
  IsArray,
  IsNotEmpty,
  IsOptional,
  IsString,
  Matches,
  MaxLength,
  ValidateIf,
} from 'class-validator';
import { USER_ID_MESSAGE, USER_ID_PATTERN } from '../../common/user-id';

export const RESOURCE_ID_PATTERN = /^[A-Za-z0-9_.:-]{1,128}$/;
export const MODEL_NAME_PATTERN = /^[A-Za-z0-9_.:/-]{1,128}$/;
/** Longest text one embedding input may hold, here and on /v1/embeddings. */
export const MAX_TEXT = 200_000;

export class EmbedResourceDto {
  @ApiProperty({ example: 'pdf_123', pattern: RESOURCE_ID_PATTERN.source })
  @Matches(RESOURCE_ID_PATTERN, { message: `resourceId must match ${RESOURCE_ID_PATTERN.source}` })
  resourceId!: string;

  @ApiPropertyOptional({ example: 'The mitochondria is the powerhouse of the cell.', description: 'One text (an `embedding` operation); give content or contents, not both' })
  @ValidateIf((dto: EmbedResourceDto) => dto.contents === undefined || dto.content !== undefined)
  @IsString({ message: 'content must be a string (give content or contents)' })
  @IsNotEmpty()
  @MaxLength(MAX_TEXT)
  content?: string;

  @ApiPropertyOptional({ example: ['Chapter 1 ...', 'Chapter 2 ...'], description: 'Several texts (a `batch_embedding` operation)' })
  @ValidateIf((dto: EmbedResourceDto) => dto.contents !== undefined)
  @IsArray()
  @ArrayMinSize(1)
  @ArrayMaxSize(512)
  @IsString({ each: true })
  @IsNotEmpty({ each: true })
  @MaxLength(MAX_TEXT, { each: true })
  contents?: string[];

  @ApiPropertyOptional({ example: 'user123', pattern: USER_ID_PATTERN.source, description: "The owner: tracks the embedding tokens and stores the chunks for this user's search; without it nothing is stored" })
  @IsOptional()
  @Matches(USER_ID_PATTERN, { message: `userId ${USER_ID_MESSAGE}` })
  userId?: string;

  @ApiPropertyOptional({ example: 'openai/text-embedding-3-small', description: 'Default AI_EMBEDDING_MODEL' })
  @IsOptional()
  @Matches(MODEL_NAME_PATTERN, { message: `model must match ${MODEL_NAME_PATTERN.source}` })
  model?: string;
}
