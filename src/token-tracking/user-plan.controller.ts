import { Body, Controller, Get, Param, Put } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import { SetLimitsDto, SetTierDto, UserPlanResponseDto } from './dto/user-plan.dto';
import { UserIdParamDto } from './dto/user-id-param.dto';
import { UserPlanService } from './user-plan.service';
import { Access } from '../auth/access.decorator';
import { ApiErrorResponses, BODY_ERRORS } from '../common/api-responses.decorator';

@ApiTags('limits')
@Controller('user')
export class UserPlanController {
  constructor(private readonly plans: UserPlanService) {}

  @Get(':userId/limits')
  @Access('user', { owner: 'param:userId' })
  @ApiOperation({ summary: "A user's tier, effective limits, rolling window and what remains" })
  @ApiOkResponse({ type: UserPlanResponseDto })
  @ApiErrorResponses('validation')
  get(@Param() { userId }: UserIdParamDto): Promise<UserPlanResponseDto> {
    return this.plans.describe(userId);
  }

  @Put(':userId/tier')
  @Access('admin')
  @ApiOperation({ summary: "Set a user's tier (admin)" })
  @ApiOkResponse({ type: UserPlanResponseDto })
  @ApiErrorResponses(BODY_ERRORS)
  setTier(@Param() { userId }: UserIdParamDto, @Body() dto: SetTierDto): Promise<UserPlanResponseDto> {
    return this.plans.setTier(userId, dto.tier);
  }

  @Put(':userId/limits')
  @Access('admin')
  @ApiOperation({ summary: "Replace a user's limit overrides (admin); {} removes them" })
  @ApiOkResponse({ type: UserPlanResponseDto })
  @ApiErrorResponses(BODY_ERRORS)
  setLimits(@Param() { userId }: UserIdParamDto, @Body() dto: SetLimitsDto): Promise<UserPlanResponseDto> {
    return this.plans.setLimits(userId, dto);
  }
}
