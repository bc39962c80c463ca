import { ApiProperty } from '@nestjs/swagger';
import { IsMongoId } from 'class-validator';

export class ApiKeyIdParamDto {
  @ApiProperty({ example: '6650c0ffee0000000000abcd', description: 'The id returned when the key was created or listed' })
  @IsMongoId({ message: 'id must be a 24-character hex ObjectId' })
  id!: string;
}
