import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { Role, ROLES } from '../principal';

/** A key's metadata: never its hash, and never the key itself except once, at creation. */
export class ApiKeyResponseDto {
  @ApiProperty({ example: '6650c0ffee0000000000abcd' })
  id!: string;

  @ApiProperty({ example: 'tl_user_AbC123', description: 'Non-secret start of the key' })
  prefix!: string;

  @ApiProperty({ enum: ROLES, example: 'user' })
  role!: Role;

  @ApiPropertyOptional({ example: 'user123', nullable: true, type: String })
  userId!: string | null;

  @ApiPropertyOptional({ example: 'mobile app backend', nullable: true, type: String })
  name!: string | null;

  @ApiProperty({ example: '2026-11-24T09:12:00.000Z', format: 'date-time' })
  createdAt!: string;

  @ApiProperty({ nullable: true, type: String, format: 'date-time', example: '2026-11-24T10:00:00.000Z', description: 'Updated at most once a minute' })
  lastUsedAt!: string | null;

  @ApiProperty({ nullable: true, type: String, format: 'date-time', example: null })
  revokedAt!: string | null;
}

export class CreatedApiKeyResponseDto extends ApiKeyResponseDto {
  @ApiProperty({ example: 'tl_user_AbC123dEf456gHi789jKl012mNo345pQr678sT', description: 'The key. Shown only in this response: store it now' })
  key!: string;
}
