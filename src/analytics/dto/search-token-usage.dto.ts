import { ApiProperty, ApiPropertyOptional, getSchemaPath } from '@nestjs/swagger';
import { Type } from 'class-transformer';
import { IsIn, IsInt, IsOptional, IsString, Matches, Max, MaxLength, Min, MinLength } from 'class-validator';
import { USER_ID_MESSAGE, USER_ID_PATTERN } from '../../common/user-id';
import { OPERATION_TYPES, OperationType } from '../../token-tracking/usage-record';
import { UsageEventDto } from './usage-event.dto';

export const MAX_DAYS = 366;

/** Filters shared by the seed 004 endpoints. */
export class UsageFilterQueryDto {
  @ApiPropertyOptional({ example: 'user123', pattern: USER_ID_PATTERN.source, description: 'Whose usage; a user key may only name its own user (and gets it by default)' })
  @IsOptional()
  @Matches(USER_ID_PATTERN, { message: `user ${USER_ID_MESSAGE}` })
  user?: string;

  @ApiPropertyOptional({ enum: OPERATION_TYPES, example: 'rag_answer' })
  @IsOptional()
  @IsIn(OPERATION_TYPES, { message: `operation must be one of ${OPERATION_TYPES.join(', ')}` })
  operation?: OperationType;

  @ApiPropertyOptional({ example: 'openai/gpt-4o-mini' })
  @IsOptional()
  @IsString()
  @MinLength(1)
  @MaxLength(200)
  model?: string;
}

export class TokenUsageQueryDto extends UsageFilterQueryDto {
  @ApiPropertyOptional({ example: 7, default: 7, minimum: 1, maximum: MAX_DAYS, description: 'Calendar days ending today (USAGE_TIMEZONE)' })
  @IsOptional()
  @Type(() => Number)
  @IsInt()
  @Min(1)
  @Max(MAX_DAYS)
  days: number = 7;
}

export class SystemTokenUsageQueryDto extends TokenUsageQueryDto {
  @ApiPropertyOptional({ example: 100, default: 100, minimum: 1, maximum: 1000, description: 'Most users listed in by_user (highest cost first)' })
  @IsOptional()
  @Type(() => Number)
  @IsInt()
  @Min(1)
  @Max(1000)
  limit: number = 100;
}

export class RecentUsageQueryDto extends UsageFilterQueryDto {
  @ApiPropertyOptional({ example: 20, default: 20, minimum: 1, maximum: 500 })
  @IsOptional()
  @Type(() => Number)
  @IsInt()
  @Min(1)
  @Max(500)
  limit: number = 20;
}

/** Usage figures of one slice (snake_case, like seed 004's log). */
export class UsageStatsDto {
  @ApiProperty({ example: 12 }) operations!: number;
  @ApiProperty({ example: 11 }) successful_operations!: number;
  @ApiProperty({ example: 1 }) failed_operations!: number;
  @ApiProperty({ example: 14200 }) prompt_tokens!: number;
  @ApiProperty({ example: 1800 }) completion_tokens!: number;
  @ApiProperty({ example: 120 }) embedding_tokens!: number;
  @ApiProperty({ example: 16120 }) total_tokens!: number;
  @ApiProperty({ example: 0.003213, description: 'USD' }) cost_estimate!: number;
  @ApiProperty({ example: 3213, description: 'Integer micro-USD' }) cost_micros!: number;
  @ApiProperty({ example: 1.42, description: 'Mean response time, seconds' }) avg_response_time!: number;
  @ApiProperty({ example: 0 }) cache_hits!: number;
}

export class DailyUsageStatsDto extends UsageStatsDto {
  @ApiProperty({ example: '2026-05-04' }) date!: string;
}

export class UserUsageStatsDto extends UsageStatsDto {
  @ApiProperty({ example: 'user123', nullable: true, type: String, description: 'null: calls made for no user (unattributed)' })
  user_id!: string | null;
}

export class UsageFiltersDto {
  @ApiProperty({ example: null, nullable: true, type: String }) operation!: string | null;
  @ApiProperty({ example: null, nullable: true, type: String }) model!: string | null;
}

const STATS_MAP = { type: 'object', additionalProperties: { $ref: getSchemaPath('UsageStatsDto') } } as const;

/** GET /api/v1/search/token-usage */
export class TokenUsageResponseDto {
  @ApiProperty({ example: 'user123' }) user_id!: string;
  @ApiProperty({ example: 7 }) days!: number;
  @ApiProperty({ example: '2026-04-28' }) from!: string;
  @ApiProperty({ example: '2026-05-04' }) to!: string;
  @ApiProperty({ example: 'UTC' }) timezone!: string;
  @ApiProperty({ type: UsageFiltersDto }) filters!: UsageFiltersDto;
  @ApiProperty({ type: UsageStatsDto }) totals!: UsageStatsDto;
  @ApiProperty({ ...STATS_MAP, description: 'By operation type' }) by_operation!: Record<string, UsageStatsDto>;
  @ApiProperty({ ...STATS_MAP, description: 'By model' }) by_model!: Record<string, UsageStatsDto>;
  @ApiProperty({ type: [DailyUsageStatsDto], description: 'Every day of the range, oldest first' }) by_day!: DailyUsageStatsDto[];
}

export class SystemUsageFiltersDto extends UsageFiltersDto {
  @ApiProperty({ example: null, nullable: true, type: String }) user!: string | null;
}

/** GET /api/v1/search/token-usage/all */
export class SystemTokenUsageResponseDto {
  @ApiProperty({ example: 7 }) days!: number;
  @ApiProperty({ example: '2026-04-28' }) from!: string;
  @ApiProperty({ example: '2026-05-04' }) to!: string;
  @ApiProperty({ example: 'UTC' }) timezone!: string;
  @ApiProperty({ type: SystemUsageFiltersDto }) filters!: SystemUsageFiltersDto;
  @ApiProperty({ type: UsageStatsDto, description: 'All usage, including calls made for no user' }) totals!: UsageStatsDto;
  @ApiProperty({ example: 42, description: 'Users with usage in the range (matching the filters)' }) unique_users!: number;
  @ApiProperty({ ...STATS_MAP }) by_operation!: Record<string, UsageStatsDto>;
  @ApiProperty({ ...STATS_MAP }) by_model!: Record<string, UsageStatsDto>;
  @ApiProperty({ type: [DailyUsageStatsDto] }) by_day!: DailyUsageStatsDto[];
  @ApiProperty({ type: [UserUsageStatsDto], description: 'Highest cost first, at most `limit`' }) by_user!: UserUsageStatsDto[];
}

/** GET /api/v1/search/token-usage/recent */
export class RecentUsageResponseDto {
  @ApiProperty({ example: 'user123' }) user_id!: string;
  @ApiProperty({ example: 20 }) count!: number;
  @ApiProperty({ type: [UsageEventDto], description: 'Newest first' }) operations!: UsageEventDto[];
}
