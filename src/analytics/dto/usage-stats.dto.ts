import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { Transform, Type } from 'class-transformer';
import { IsBoolean, IsIn, IsInt, IsOptional, IsString, Matches, Max, MaxLength, Min } from 'class-validator';
import { USER_ID_MESSAGE, USER_ID_PATTERN } from '../../common/user-id';
import { Period, PERIODS } from '../usage-period';
import { MAX_DAYS } from './search-token-usage.dto';

export class UsagePeriodQueryDto {
  @ApiPropertyOptional({
    enum: PERIODS,
    default: 'month',
    description: 'today; week = the last 7 days; month and year = the current calendar month and year (USAGE_TIMEZONE); all',
  })
  @IsOptional()
  @IsIn(PERIODS, { message: `period must be one of ${PERIODS.join(', ')}` })
  period: Period = 'month';
}

export class UsageHistoryQueryDto {
  @ApiPropertyOptional({ example: 30, default: 30, minimum: 1, maximum: MAX_DAYS })
  @IsOptional()
  @Type(() => Number)
  @IsInt()
  @Min(1)
  @Max(MAX_DAYS)
  days: number = 30;
}

export class MostUsedToolsQueryDto {
  @ApiPropertyOptional({ example: 5, default: 5, minimum: 1, maximum: 100 })
  @IsOptional()
  @Type(() => Number)
  @IsInt()
  @Min(1)
  @Max(100)
  limit: number = 5;

  @ApiPropertyOptional({ enum: PERIODS, default: 'all' })
  @IsOptional()
  @IsIn(PERIODS, { message: `period must be one of ${PERIODS.join(', ')}` })
  period: Period = 'all';
}

export const TOOL_NAME_PATTERN = /^[A-Za-z0-9_.:-]{1,100}$/;
const TIER_PATTERN = /^[A-Za-z][A-Za-z0-9_]{0,31}$/;

/** POST /api/usage (seed 002's trackToolUsage). */
export class TrackToolUsageDto {
  @ApiProperty({ example: 'generate_image', pattern: TOOL_NAME_PATTERN.source })
  @Matches(TOOL_NAME_PATTERN, { message: `toolName must match ${TOOL_NAME_PATTERN.source}` })
  toolName!: string;

  @ApiPropertyOptional({ example: 'free', description: 'Tier name, case-insensitive (stored upper-case); default: the user\'s plan tier' })
  @IsOptional()
  @Matches(TIER_PATTERN, { message: `tier must match ${TIER_PATTERN.source}` })
  @Transform(({ value }) => (typeof value === 'string' ? value.toUpperCase() : value), { toClassOnly: true })
  tier?: string;

  @ApiProperty({ example: true })
  @IsBoolean()
  success!: boolean;

  @ApiProperty({ example: 840, description: 'Milliseconds' })
  @IsInt()
  @Min(0)
  @Max(86_400_000)
  executionTimeMs!: number;

  @ApiPropertyOptional({ example: 'user123', pattern: USER_ID_PATTERN.source, description: 'A user key may only name its own user (and gets it by default)' })
  @IsOptional()
  @Matches(USER_ID_PATTERN, { message: `userId ${USER_ID_MESSAGE}` })
  userId?: string;

  @ApiPropertyOptional({ example: 'tool-call-5f0c3c1e', description: "Idempotency key, scoped to the call's user: a retry with the same id and call is counted once (answered with header idempotent-replayed: true); the same id with a different call is a 409" })
  @IsOptional()
  @IsString()
  @Matches(/^[A-Za-z0-9_.:-]{1,128}$/, { message: 'recordId must match ^[A-Za-z0-9_.:-]{1,128}$' })
  @MaxLength(128)
  recordId?: string;
}

export class TrackToolUsageResponseDto {
  @ApiProperty({ example: 'ok' }) status!: 'ok';
  @ApiProperty({ example: 'tool-call-5f0c3c1e' }) recordId!: string;
  @ApiProperty({ example: 'generate_image' }) toolName!: string;
  @ApiProperty({ example: 'FREE' }) tier!: string;
}

/** Token and cost figures (seed 002's TokenUsageDoc, with cost in USD and the display currency). */
export class UsageFiguresDto {
  @ApiProperty({ example: 152000, description: 'Prompt and embedding tokens' }) inputTokens!: number;
  @ApiProperty({ example: 48000, description: 'Completion tokens' }) outputTokens!: number;
  @ApiProperty({ example: 200000 }) totalTokens!: number;
  @ApiProperty({ example: 320 }) requestCount!: number;
  @ApiProperty({ example: 0.0512, description: 'USD' }) costUsd!: number;
  @ApiProperty({ example: 0.94, description: 'DISPLAY_CURRENCY' }) cost!: number;
}

export class TierUsageDto extends UsageFiguresDto {
  @ApiProperty({ example: 'FREE' }) tier!: string;
}

export class DimensionUsageDto extends UsageFiguresDto {
  @ApiProperty({ example: 3 }) failureCount!: number;
  @ApiProperty({ example: 1240, description: 'Mean response time, ms' }) avgLatencyMs!: number;
}

export class ProviderUsageDto extends DimensionUsageDto {
  @ApiProperty({ example: 'openrouter' }) provider!: string;
}

export class ModelUsageDto extends DimensionUsageDto {
  @ApiProperty({ example: 'openai/gpt-4o-mini' }) model!: string;
}

export class OperationUsageDto extends DimensionUsageDto {
  @ApiProperty({ example: 'chat_info' }) operation!: string;
}

export class DailyTrendPointDto extends UsageFiguresDto {
  @ApiProperty({ example: '2026-05-04' }) date!: string;
}

export class ToolTierUsageDto {
  @ApiProperty({ example: 'FREE' }) tier!: string;
  @ApiProperty({ example: 40 }) callCount!: number;
  @ApiProperty({ example: 38 }) successCount!: number;
  @ApiProperty({ example: 2 }) failureCount!: number;
  @ApiProperty({ example: 33600 }) totalExecutionTimeMs!: number;
  @ApiProperty({ example: 840 }) avgExecutionTimeMs!: number;
}

/** Seed 002's ToolUsageDoc figures of one tool over a period. */
export class ToolUsageDto {
  @ApiProperty({ example: 'generate_image' }) toolName!: string;
  @ApiProperty({ example: 40 }) callCount!: number;
  @ApiProperty({ example: 38 }) successCount!: number;
  @ApiProperty({ example: 2 }) failureCount!: number;
  @ApiProperty({ example: 0.95, description: 'successCount / callCount' }) successRate!: number;
  @ApiProperty({ example: 33600 }) totalExecutionTimeMs!: number;
  @ApiProperty({ example: 840 }) avgExecutionTimeMs!: number;
  @ApiProperty({ type: [ToolTierUsageDto] }) byTier!: ToolTierUsageDto[];
}

export class TopUserDto {
  @ApiProperty({ example: 'user123' }) userId!: string;
  @ApiProperty({ example: 52000 }) totalTokens!: number;
  @ApiProperty({ example: 40 }) requestCount!: number;
  @ApiProperty({ example: 0.0123 }) costUsd!: number;
  @ApiProperty({ example: 0.23 }) cost!: number;
}

export class FormattedFiguresDto {
  @ApiProperty({ example: '200K' }) totalTokens!: string;
  @ApiProperty({ example: 'R0.94' }) cost!: string;
}

export class UsageSummaryDto extends UsageFiguresDto {
  @ApiProperty({ example: 42, description: 'Distinct users with usage in the period' }) activeUsers!: number;
  @ApiProperty({ example: 0.99, description: 'Successful requests / requests' }) successRate!: number;
  @ApiProperty({ type: FormattedFiguresDto }) formatted!: FormattedFiguresDto;
}

export class UnpricedModelDto {
  @ApiProperty({ example: 'acme/house-model' }) model!: string;
  @ApiProperty({ example: 42, description: 'Calls recorded without a price (cost 0) in the period' }) calls!: number;
  @ApiProperty({ example: 125000 }) totalTokens!: number;
  @ApiProperty({ example: '2026-05-04T10:30:45.123Z' }) lastSeenAt!: string;
}

/** GET /api/usage */
export class UsageOverviewDto {
  @ApiProperty({ enum: PERIODS, example: 'month' }) period!: Period;
  @ApiProperty({ example: '2026-05-01', nullable: true, type: String, description: 'null for all time' }) from!: string | null;
  @ApiProperty({ example: '2026-05-04' }) to!: string;
  @ApiProperty({ example: 'UTC' }) timezone!: string;
  @ApiProperty({ example: 'ZAR' }) currency!: string;
  @ApiProperty({ example: 18.4, description: 'Units of currency per USD' }) currencyRate!: number;
  @ApiProperty({ type: UsageSummaryDto }) summary!: UsageSummaryDto;
  @ApiProperty({ type: [TierUsageDto] }) byTier!: TierUsageDto[];
  @ApiProperty({ type: [ToolUsageDto], description: 'Most calls first' }) toolUsage!: ToolUsageDto[];
  @ApiProperty({ type: [ProviderUsageDto] }) providers!: ProviderUsageDto[];
  @ApiProperty({ type: [ModelUsageDto] }) models!: ModelUsageDto[];
  @ApiProperty({ type: [OperationUsageDto] }) operations!: OperationUsageDto[];
  @ApiProperty({ type: [DailyTrendPointDto], description: 'The last 30 days, oldest first, whatever the period' }) dailyTrend!: DailyTrendPointDto[];
  @ApiProperty({ type: [ToolUsageDto], description: 'Top 5 tools of the period' }) mostUsedTools!: ToolUsageDto[];
  @ApiProperty({ type: [TopUserDto], description: 'Top 10 users of the period by cost' }) topUsers!: TopUserDto[];
  @ApiProperty({
    type: [UnpricedModelDto],
    description: 'Models whose calls in the period no price list priced (recorded at cost 0), most calls first: add them to the price catalogue, then re-price the period',
  })
  unpricedModels!: UnpricedModelDto[];
}

/** GET /api/usage/today, /monthly, /all-time */
export class PeriodUsageDto extends UsageFiguresDto {
  @ApiProperty({ enum: PERIODS, example: 'today' }) period!: Period;
  @ApiProperty({ example: '2026-05-04', nullable: true, type: String }) from!: string | null;
  @ApiProperty({ example: '2026-05-04' }) to!: string;
  @ApiProperty({ example: 'ZAR' }) currency!: string;
  @ApiProperty({ example: 12 }) activeUsers!: number;
  @ApiProperty({ type: [TierUsageDto] }) byTier!: TierUsageDto[];
}

export class DailyUsageDto extends UsageFiguresDto {
  @ApiProperty({ example: '2026-05-04' }) date!: string;
  @ApiProperty({ type: [TierUsageDto] }) byTier!: TierUsageDto[];
}

/** GET /api/usage/history */
export class UsageHistoryDto {
  @ApiProperty({ example: 30 }) days!: number;
  @ApiProperty({ example: '2026-04-05' }) from!: string;
  @ApiProperty({ example: '2026-05-04' }) to!: string;
  @ApiProperty({ example: 'ZAR' }) currency!: string;
  @ApiProperty({ type: [DailyUsageDto], description: 'Every day, oldest first' }) history!: DailyUsageDto[];
}

/** GET /api/usage/tools/most-used, /api/usage/tools/monthly */
export class ToolUsageReportDto {
  @ApiProperty({ enum: PERIODS, example: 'month' }) period!: Period;
  @ApiProperty({ example: '2026-05-01', nullable: true, type: String }) from!: string | null;
  @ApiProperty({ example: '2026-05-04' }) to!: string;
  @ApiProperty({ example: 120 }) totalCalls!: number;
  @ApiProperty({ example: 0.97 }) successRate!: number;
  @ApiProperty({ type: [ToolUsageDto], description: 'Most calls first' }) tools!: ToolUsageDto[];
}
