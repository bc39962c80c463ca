import { Controller, Get, Query } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import { Access } from '../auth/access.decorator';
import {
  RecentUsageQueryDto,
  RecentUsageResponseDto,
  SystemTokenUsageQueryDto,
  SystemTokenUsageResponseDto,
  TokenUsageQueryDto,
  TokenUsageResponseDto,
} from './dto/search-token-usage.dto';
import { UsageAnalyticsService } from './usage-analytics.service';
import { ApiErrorResponses } from '../common/api-responses.decorator';

/** Seed 004's token usage endpoints. */
@ApiTags('analytics')
@Controller('api/v1/search/token-usage')
export class SearchTokenUsageController {
  constructor(private readonly analytics: UsageAnalyticsService) {}

  @Get()
  @Access('user', { owner: 'query:user' })
  @ApiOperation({ summary: "One user's usage over the last `days` days: totals, by operation type, by model, by day" })
  @ApiOkResponse({ type: TokenUsageResponseDto })
  @ApiErrorResponses('validation')
  usage(@Query() query: TokenUsageQueryDto): Promise<TokenUsageResponseDto> {
    return this.analytics.userUsage(query.user, query.days, query);
  }

  @Get('recent')
  @Access('user', { owner: 'query:user' })
  @ApiOperation({ summary: "A user's most recent usage events, newest first" })
  @ApiOkResponse({ type: RecentUsageResponseDto })
  @ApiErrorResponses('validation')
  recent(@Query() query: RecentUsageQueryDto): Promise<RecentUsageResponseDto> {
    return this.analytics.recent(query.user, query.limit, query);
  }

  @Get('all')
  @Access('admin')
  @ApiOperation({ summary: 'System-wide usage over the last `days` days with a per-user breakdown (admin)' })
  @ApiOkResponse({ type: SystemTokenUsageResponseDto })
  @ApiErrorResponses('validation')
  all(@Query() query: SystemTokenUsageQueryDto): Promise<SystemTokenUsageResponseDto> {
    return this.analytics.systemUsage(query.user, query.days, query, query.limit);
  }
}
