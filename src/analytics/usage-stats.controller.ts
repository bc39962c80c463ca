import { Body, Controller, Get, Post, Query, Req, Res } from '@nestjs/common';
import { ApiCreatedResponse, ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { Access } from '../auth/access.decorator';
import {
  MostUsedToolsQueryDto,
  PeriodUsageDto,
  ToolUsageReportDto,
  TrackToolUsageDto,
  TrackToolUsageResponseDto,
  UsageHistoryDto,
  UsageHistoryQueryDto,
  UsageOverviewDto,
  UsagePeriodQueryDto,
} from './dto/usage-stats.dto';
import { UsageAnalyticsService } from './usage-analytics.service';
import { UsageEventsService } from './usage-events.service';
import { ApiErrorResponses, BODY_ERRORS } from '../common/api-responses.decorator';

/** Seed 002's admin usage API and tool-call tracking. */
@ApiTags('analytics')
@Controller('api/usage')
export class UsageStatsController {
  constructor(
    private readonly analytics: UsageAnalyticsService,
    private readonly events: UsageEventsService,
  ) {}

  @Post()
  @Access('user', { owner: 'body:userId' })
  @ApiOperation({ summary: 'Record one tool call (a tool_call usage event with zero tokens)' })
  @ApiCreatedResponse({ type: TrackToolUsageResponseDto, description: 'Recorded, or a retry of the same call with the same recordId (header idempotent-replayed: true)' })
  @ApiErrorResponses(BODY_ERRORS, 'record-id-conflict')
  async trackTool(@Body() dto: TrackToolUsageDto, @Req() request: FastifyRequest, @Res({ passthrough: true }) reply: FastifyReply): Promise<TrackToolUsageResponseDto> {
    const { recordId, tier, replayed } = await this.events.recordToolCall({ ...dto, requestId: request.id });
    if (replayed) reply.header('idempotent-replayed', 'true');
    return { status: 'ok', recordId, toolName: dto.toolName, tier };
  }

  @Get()
  @Access('admin')
  @ApiOperation({
    summary: "A period's usage overview (admin)",
    description: 'Totals, active users and cost, broken down by tier, tool, provider, model and operation, with the 30-day trend and the top users.',
  })
  @ApiOkResponse({ type: UsageOverviewDto })
  @ApiErrorResponses('validation')
  overview(@Query() { period }: UsagePeriodQueryDto): Promise<UsageOverviewDto> {
    return this.analytics.overview(period);
  }

  @Get('today')
  @Access('admin')
  @ApiOperation({ summary: "Today's usage with a per-tier breakdown" })
  @ApiOkResponse({ type: PeriodUsageDto })
  today(): Promise<PeriodUsageDto> {
    return this.analytics.periodUsage('today');
  }

  @Get('history')
  @Access('admin')
  @ApiOperation({ summary: 'Usage of each of the last `days` days' })
  @ApiOkResponse({ type: UsageHistoryDto })
  @ApiErrorResponses('validation')
  history(@Query() { days }: UsageHistoryQueryDto): Promise<UsageHistoryDto> {
    return this.analytics.history(days);
  }

  @Get('all-time')
  @Access('admin')
  @ApiOperation({ summary: 'All-time usage with a per-tier breakdown' })
  @ApiOkResponse({ type: PeriodUsageDto })
  allTime(): Promise<PeriodUsageDto> {
    return this.analytics.periodUsage('all');
  }

  @Get('monthly')
  @Access('admin')
  @ApiOperation({ summary: "The current month's usage with a per-tier breakdown" })
  @ApiOkResponse({ type: PeriodUsageDto })
  monthly(): Promise<PeriodUsageDto> {
    return this.analytics.periodUsage('month');
  }

  @Get('tools/most-used')
  @Access('admin')
  @ApiOperation({ summary: 'The most-called tools (all time by default)' })
  @ApiOkResponse({ type: ToolUsageReportDto })
  @ApiErrorResponses('validation')
  mostUsedTools(@Query() { limit, period }: MostUsedToolsQueryDto): Promise<ToolUsageReportDto> {
    return this.analytics.toolReport(period, limit);
  }

  @Get('tools/monthly')
  @Access('admin')
  @ApiOperation({ summary: "The current month's tool usage, per tool and tier" })
  @ApiOkResponse({ type: ToolUsageReportDto })
  monthlyTools(): Promise<ToolUsageReportDto> {
    return this.analytics.toolReport('month');
  }
}
