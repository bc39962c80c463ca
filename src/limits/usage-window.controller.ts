import { Controller, Get, HttpCode, Param, Post } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import { Clock } from '../common/clock';
import { UserIdParamDto } from '../token-tracking/dto/user-id-param.dto';
import { toLimitsDto, WindowUsageResponseDto } from './dto/window-usage.dto';
import { LimitState, UsageLimitsService, WINDOW_MS } from './usage-limits.service';
import { Access } from '../auth/access.decorator';
import { ApiErrorResponses } from '../common/api-responses.decorator';

function toResponse(userId: string, state: LimitState, now: number): WindowUsageResponseDto {
  return {
    status: 'ok',
    user_id: userId,
    current_usage: state.currentUsage,
    reset_at: windowResetAt(state, now),
    tracking_enabled: state.trackingEnabled,
    window_hours: WINDOW_MS / 3_600_000,
    tier: state.tier,
    limits: toLimitsDto(state.limits),
    remaining: state.remaining,
  };
}

/**
 * A window resets 24 hours after its first use (seed 000); an empty one would open with the next
 * use, so the earliest it can reset is 24 hours from now. Null only when no window can be known
 * (Redis unavailable, tracking_enabled false).
 */
export function windowResetAt(state: Pick<LimitState, 'resetAt' | 'trackingEnabled'>, now: number): string | null {
  if (state.resetAt) return state.resetAt.toISOString();
  return state.trackingEnabled ? new Date(now + WINDOW_MS).toISOString() : null;
}

@ApiTags('token-usage')
@Controller('api/v1/tokens')
export class UsageWindowController {
  constructor(
    private readonly limits: UsageLimitsService,
    private readonly clock: Clock,
  ) {}

  @Get('usage/:userId')
  @Access('user', { owner: 'param:userId' })
  @ApiOperation({ summary: "A user's 24-hour rolling window, tier limits and what remains" })
  @ApiOkResponse({ type: WindowUsageResponseDto })
  @ApiErrorResponses('validation')
  async usage(@Param() { userId }: UserIdParamDto): Promise<WindowUsageResponseDto> {
    return toResponse(userId, await this.limits.state(userId), this.clock.now());
  }

  @Post('reset/:userId')
  @Access('admin')
  @HttpCode(200)
  @ApiOperation({ summary: "Clear a user's rolling window (admin)" })
  @ApiOkResponse({ type: WindowUsageResponseDto })
  @ApiErrorResponses('validation')
  async reset(@Param() { userId }: UserIdParamDto): Promise<WindowUsageResponseDto> {
    await this.limits.resetWindow(userId);
    return toResponse(userId, await this.limits.state(userId), this.clock.now());
  }
}
