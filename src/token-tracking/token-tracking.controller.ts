import { Controller, Get, Param } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import { Access } from '../auth/access.decorator';
import { UserIdParamDto } from './dto/user-id-param.dto';
import { UserTokenUsageResponseDto } from './dto/user-token-usage-response.dto';
import { TokenTrackingService } from './token-tracking.service';
import { ApiErrorResponses } from '../common/api-responses.decorator';

@ApiTags('token-usage')
@Controller('user')
export class TokenTrackingController {
  constructor(private readonly tracking: TokenTrackingService) {}

  @Get(':userId/token-usage')
  @Access('user', { owner: 'param:userId' })
  @ApiOperation({ summary: "A user's all-time totals, daily and monthly rollups and recent sessions" })
  @ApiOkResponse({ type: UserTokenUsageResponseDto })
  @ApiErrorResponses('validation', { kind: 'not-found', description: 'No usage has been recorded for this user' })
  getUserTokenUsage(@Param() { userId }: UserIdParamDto): Promise<UserTokenUsageResponseDto> {
    return this.tracking.getUserTokenUsage(userId);
  }
}
