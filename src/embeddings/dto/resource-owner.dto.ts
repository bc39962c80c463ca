import { ApiProperty } from '@nestjs/swagger';
import { Matches } from 'class-validator';
import { USER_ID_MESSAGE, USER_ID_PATTERN } from '../../common/user-id';
import { RESOURCE_ID_PATTERN } from './embed-resource.dto';

export class ResourceIdParamDto {
  @ApiProperty({ example: 'pdf_123', pattern: RESOURCE_ID_PATTERN.source })
  @Matches(RESOURCE_ID_PATTERN, { message: `resourceId must match ${RESOURCE_ID_PATTERN.source}` })
  resourceId!: string;
}

export class ResourceOwnerQueryDto {
  @ApiProperty({ example: 'user123', pattern: USER_ID_PATTERN.source, description: 'Owner of the resource' })
  @Matches(USER_ID_PATTERN, { message: `userId ${USER_ID_MESSAGE}` })
  userId!: string;
}
