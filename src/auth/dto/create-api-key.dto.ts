import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { IsIn, IsNotEmpty, IsOptional, IsString, Matches, MaxLength, ValidateIf } from 'class-validator';
import { USER_ID_MESSAGE, USER_ID_PATTERN } from '../../common/user-id';
import { Role, ROLES } from '../principal';

export class CreateApiKeyDto {
  @ApiProperty({ enum: ROLES, example: 'user', description: 'admin: everything; service: AI calls and usage reads for any user; user: only its own userId' })
  @IsIn(ROLES, { message: `role must be one of ${ROLES.join(', ')}` })
  role!: Role;

  @ApiPropertyOptional({ example: 'user123', pattern: USER_ID_PATTERN.source, description: 'Required for role user, not allowed otherwise' })
  @ValidateIf((dto: CreateApiKeyDto) => dto.role === 'user' || dto.userId !== undefined)
  @Matches(USER_ID_PATTERN, { message: `userId ${USER_ID_MESSAGE}` })
  userId?: string;

  @ApiPropertyOptional({ example: 'mobile app backend', maxLength: 100 })
  @IsOptional()
  @IsString()
  @IsNotEmpty()
  @MaxLength(100)
  name?: string;
}
