import type { TierLimits } from '../tier-limits';
import { ApiProperty } from '@nestjs/swagger';

export class RemainingDto {
  @ApiProperty({ example: 48477, nullable: true, type: Number, description: 'null = unlimited' }) rolling24hTokens!: number | null;
  @ApiProperty({ example: 98000, nullable: true, type: Number }) dailyTokens!: number | null;
  @ApiProperty({ example: 0.95, nullable: true, type: Number, description: 'USD' }) monthlyCostUsd!: number | null;
}

export class LimitsDto {
  @ApiProperty({ example: 50000, nullable: true, type: Number }) rolling24hTokens!: number | null;
  @ApiProperty({ example: 100000, nullable: true, type: Number }) dailyTokens!: number | null;
  @ApiProperty({ example: 1, nullable: true, type: Number, description: 'USD' }) monthlyCostUsd!: number | null;
  @ApiProperty({ example: 'open', enum: ['open', 'closed'] }) failMode!: string;
}

/** GET /api/v1/tokens/usage/:userId — the 24-hour rolling window. */
export class WindowUsageResponseDto {
  @ApiProperty({ example: 'ok' }) status!: 'ok';
  @ApiProperty({ example: 'user123' }) user_id!: string;
  @ApiProperty({ example: 1523, description: 'Tokens used in the current 24-hour window' }) current_usage!: number;
  @ApiProperty({ example: '2026-11-24T14:30:00.000Z', nullable: true, type: String, description: 'When the window resets (24 h after its first use); with no usage in the window, 24 h from now (the earliest a window opened by the next use resets); null only while tracking is unavailable' })
  reset_at!: string | null;
  @ApiProperty({ example: true, description: 'False while Redis is unavailable' }) tracking_enabled!: boolean;
  @ApiProperty({ example: 24 }) window_hours!: number;
  @ApiProperty({ example: 'FREE' }) tier!: string;
  @ApiProperty({ type: LimitsDto }) limits!: LimitsDto;
  @ApiProperty({ type: RemainingDto, nullable: true, description: 'null while Redis is unavailable' }) remaining!: RemainingDto | null;
}

/** Effective limits as responses show them: unset means unlimited (null); fail mode defaults to open. */
export function toLimitsDto(limits: TierLimits): LimitsDto {
  return {
    rolling24hTokens: limits.rolling24hTokens ?? null,
    dailyTokens: limits.dailyTokens ?? null,
    monthlyCostUsd: limits.monthlyCostUsd ?? null,
    failMode: limits.failMode ?? 'open',
  };
}
