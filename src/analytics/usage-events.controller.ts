import { Controller, Get, Headers, Query, Res } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiProduces, ApiTags } from '@nestjs/swagger';
import type { FastifyReply } from 'fastify';
import { Access } from '../auth/access.decorator';
import { UsageEventsPageDto, UsageEventsQueryDto } from './dto/usage-events-query.dto';
import { toCsv } from './usage-event.mapper';
import { UsageEventsService } from './usage-events.service';

@ApiTags('analytics')
@Controller('api/v1/usage-events')
export class UsageEventsController {
  constructor(private readonly events: UsageEventsService) {}

  @Get()
  @Access('user', { owner: 'query:user' })
  @ApiOperation({ summary: 'Usage events, newest first, filtered and paginated; CSV (billing export) with Accept: text/csv' })
  @ApiProduces('application/json', 'text/csv')
  @ApiOkResponse({ type: UsageEventsPageDto })
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
