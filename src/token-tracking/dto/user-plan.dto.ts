import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { IsIn, IsInt, IsOptional, Matches, Min, ValidateIf } from 'class-validator';
import { IsUsdAmount } from '../../common/usd-amount.validator';
import { FAIL_MODES, FailMode } from '../../limits/tier-limits';
import { LimitsDto, RemainingDto } from '../../limits/dto/window-usage.dto';

export class SetTierDto {
  @ApiProperty({ example: 'JIVE', description: 'One of the configured tiers (TIER_LIMITS; default FREE, JIVE, JIGGA)' })
  @Matches(/^[A-Z][A-Z0-9_]{0,31}$/, { message: 'tier must match ^[A-Z][A-Z0-9_]{0,31}$' })
  tier!: string;
}

/** Per-user overrides; a field left out keeps the tier's value, null means unlimited. */
export class SetLimitsDto {
  @ApiPropertyOptional({ example: 20000, nullable: true, type: Number })
  @IsOptional()
  @ValidateIf((_, value) => value !== null)
  @IsInt()
  @Min(0)
  rolling24hTokens?: number | null;

  @ApiPropertyOptional({ example: 50000, nullable: true, type: Number })
  @IsOptional()
  @ValidateIf((_, value) => value !== null)
  @IsInt()
  @Min(0)
  dailyTokens?: number | null;

  @ApiPropertyOptional({ example: 5, nullable: true, type: Number, minimum: 0, maximum: 1_000_000_000, description: 'USD, at most 6 decimal places' })
  @IsOptional()
  @ValidateIf((_, value) => value !== null)
  @IsUsdAmount()
  monthlyCostUsd?: number | null;

  @ApiPropertyOptional({ example: 'closed', enum: FAIL_MODES })
  @IsOptional()
  @IsIn(FAIL_MODES)
  failMode?: FailMode;
}

export class UserPlanResponseDto {
  @ApiProperty({ example: 'user123' }) userId!: string;
  @ApiProperty({ example: 'JIVE' }) tier!: string;
  @ApiProperty({ type: LimitsDto, description: 'Effective limits (tier plus the user overrides)' }) limits!: LimitsDto;
  @ApiProperty({ example: 1523 }) rolling24hUsage!: number;
  @ApiProperty({ example: '2026-11-24T14:30:00.000Z', nullable: true, type: String }) resetAt!: string | null;
  @ApiProperty({ example: true }) trackingEnabled!: boolean;
  @ApiProperty({ type: RemainingDto, nullable: true }) remaining!: RemainingDto | null;
}
