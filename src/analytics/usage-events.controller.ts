import { Controller, Get, Headers, Query, Res } from '@nestjs/common';
import { ApiOperation, ApiTags } from '@nestjs/swagger';
import type { FastifyReply } from 'fastify';
import { Access } from '../auth/access.decorator';
import { UsageEventsPageDto, UsageEventsQueryDto } from './dto/usage-events-query.dto';
import { CSV_COLUMNS, toCsv } from './usage-event.mapper';
import { UsageEventsService } from './usage-events.service';
import { ApiErrorResponses, ApiOkJsonOr } from '../common/api-responses.decorator';

@ApiTags('analytics')
@Controller('api/v1/usage-events')
export class UsageEventsController {
  constructor(private readonly events: UsageEventsService) {}

  @Get()
  @Access('user', { owner: 'query:user' })
  @ApiOperation({ summary: 'Usage events, newest first, filtered and paginated; CSV (billing export) with Accept: text/csv' })
  @ApiOkJsonOr(UsageEventsPageDto, { 'text/csv': { schema: { type: 'string' }, example: `${CSV_COLUMNS.join(',')}\r\n` } }, 'A page of events as JSON, or CSV with Accept: text/csv (next page cursor in x-next-cursor)')
  @ApiErrorResponses('validation')
  async list(
    @Query() { user, limit, cursor, ...filter }: UsageEventsQueryDto,
    @Headers('accept') accept: string | undefined,
    @Res({ passthrough: true }) reply: FastifyReply,
  ): Promise<UsageEventsPageDto | string> {
    const page = await this.events.list({ ...filter, userId: user }, limit, cursor);
    if (!/text\/csv/i.test(accept ?? '')) return { events: page.events, count: page.events.length, next_cursor: page.nextCursor };
    reply.header('content-type', 'text/csv; charset=utf-8').header('content-disposition', 'attachment; filename="usage-events.csv"');
    if (page.nextCursor) reply.header('x-next-cursor', page.nextCursor);
    return toCsv(page.events);
  }
}
