import { ApiProperty } from '@nestjs/swagger';
import { Matches } from 'class-validator';
import { USER_ID_MESSAGE, USER_ID_PATTERN } from '../../common/user-id';

export class UserIdParamDto {
  @ApiProperty({ example: 'user123', pattern: USER_ID_PATTERN.source })
  @Matches(USER_ID_PATTERN, { message: `userId ${USER_ID_MESSAGE}` })
  userId!: string;
}
