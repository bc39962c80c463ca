import { BadRequestException, Injectable } from '@nestjs/common';
import { toLimitsDto } from '../limits/dto/window-usage.dto';
import { TierLimits } from '../limits/tier-limits';
import { UsageLimitsService } from '../limits/usage-limits.service';
import { SetLimitsDto, UserPlanResponseDto } from './dto/user-plan.dto';
import { TokenTrackingService } from './token-tracking.service';

@Injectable()
export class UserPlanService {
  constructor(
    private readonly tracking: TokenTrackingService,
    private readonly limits: UsageLimitsService,
  ) {}

  async describe(userId: string): Promise<UserPlanResponseDto> {
    const state = await this.limits.state(userId);
    return {
      userId,
      tier: state.tier,
      limits: toLimitsDto(state.limits),
      rolling24hUsage: state.currentUsage,
      resetAt: state.resetAt?.toISOString() ?? null,
      trackingEnabled: state.trackingEnabled,
      remaining: state.remaining,
    };
  }

  async setTier(userId: string, tier: string): Promise<UserPlanResponseDto> {
    const tiers = this.limits.tierNames();
    if (!tiers.includes(tier)) throw new BadRequestException(`tier must be one of ${tiers.join(', ')}`);
    await this.tracking.setTier(userId, tier);
    return this.describe(userId);
  }

  async setLimits(userId: string, dto: SetLimitsDto): Promise<UserPlanResponseDto> {
    const overrides = Object.fromEntries(Object.entries(dto).filter(([, value]) => value !== undefined)) as TierLimits;
    await this.tracking.setLimits(userId, overrides);
    return this.describe(userId);
  }
}
