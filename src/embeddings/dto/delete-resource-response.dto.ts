import { ApiProperty } from '@nestjs/swagger';

export class DeleteResourceResponseDto {
  @ApiProperty({ example: 'deleted' }) status!: 'deleted';
  @ApiProperty({ example: 'pdf_123' }) resource_id!: string;
  @ApiProperty({ example: 7 }) deleted_chunks!: number;
}
