import { ApiPropertyOptional } from '@nestjs/swagger';
import { IsBoolean, IsOptional } from 'class-validator';
import { SemanticSearchDto } from './semantic-search.dto';

export class RagAnswerDto extends SemanticSearchDto {
  @ApiPropertyOptional({ example: false, description: 'Answer as server-sent events: delta events, one done event, then [DONE]' })
  @IsOptional()
  @IsBoolean()
  stream?: boolean;
}
