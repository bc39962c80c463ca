import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { Allow, IsIn, IsOptional, Matches } from 'class-validator';
import { USER_ID_MESSAGE, USER_ID_PATTERN } from '../../common/user-id';
import { MODEL_NAME_PATTERN } from '../../embeddings/dto/embed-resource.dto';

export class EmbeddingsRequestDto {
  @ApiProperty({ example: 'text-embedding-3-small' })
  @Matches(MODEL_NAME_PATTERN, { message: `model must match ${MODEL_NAME_PATTERN.source}` })
  model!: string;

  /** Validated in the service: a string or a non-empty array of strings. */
  @ApiProperty({
    oneOf: [
      { type: 'string', minLength: 1, maxLength: 200_000 },
      { type: 'array', minItems: 1, maxItems: 256, items: { type: 'string', minLength: 1, maxLength: 200_000 } },
    ],
    example: 'The food was delicious',
  })
  @Allow()
  input!: string | string[];

  @ApiPropertyOptional({ example: 'float', enum: ['float', 'base64'], description: 'base64: little-endian float32 (what the openai SDKs request by default)' })
  @IsOptional()
  @IsIn(['float', 'base64'])
  encoding_format?: 'float' | 'base64';

  @ApiPropertyOptional({ example: 'user123' })
  @IsOptional()
  @Matches(USER_ID_PATTERN, { message: `user ${USER_ID_MESSAGE}` })
  user?: string;
}
