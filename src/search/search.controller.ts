import { Body, Controller, Get, HttpCode, HttpException, Post, Req, Res } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { Access } from '../auth/access.decorator';
import { Idempotent } from '../idempotency/idempotent.decorator';
import { ReportsUsage } from '../limits/usage-headers.interceptor';
import { RagAnswerDto } from './dto/rag-answer.dto';
import { RagAnswerResponseDto, SearchCacheStatsDto, SemanticSearchResponseDto } from './dto/search-responses.dto';
import { SemanticSearchDto } from './dto/semantic-search.dto';
import { RagService } from './rag.service';
import { SearchService } from './search.service';
import { ApiErrorResponses, ApiOkJsonOr, BODY_ERRORS } from '../common/api-responses.decorator';

@ApiTags('search')
@Controller('api/v1/search')
export class SearchController {
  constructor(
    private readonly search: SearchService,
    private readonly rag: RagService,
  ) {}

  @Post('semantic')
  @ReportsUsage()
  @Idempotent()
  @Access('user', { owner: 'body:userId' })
  @HttpCode(200)
  @ApiOperation({ summary: "The user's chunks nearest to the query (cosine similarity); cached query embeddings cost no tokens" })
  @ApiOkResponse({ type: SemanticSearchResponseDto })
  @ApiErrorResponses(BODY_ERRORS)
  semantic(@Body() dto: SemanticSearchDto, @Req() request: FastifyRequest): Promise<SemanticSearchResponseDto> {
    return this.search.semanticSearch(dto, request.id);
  }

  @Post('answer')
  @ReportsUsage()
  @Idempotent()
  @Access('user', { owner: 'body:userId' })
  @HttpCode(200)
  @ApiOperation({ summary: "Answer from the user's resources, citing resource ids (stream: true answers with server-sent events)" })
  @ApiOkJsonOr(RagAnswerResponseDto, {
    'text/event-stream': { schema: { type: 'string' }, example: 'data: {"type":"delta","text":"Paris"}\n\ndata: [DONE]\n\n' },
  }, 'The answer; with stream: true, server-sent events ending in [DONE]')
  @ApiErrorResponses(BODY_ERRORS)
  async answer(@Body() dto: RagAnswerDto, @Req() request: FastifyRequest, @Res({ passthrough: true }) reply: FastifyReply) {
    if (dto.stream) return this.streamAnswer(dto, request, reply);
    return this.rag.answer(dto, request.id);
  }

  @Get('cache/stats')
  @Access('admin')
  @ApiOperation({ summary: 'Search cache hit rates per layer, cache sizes and the in-process vector index (admin)' })
  @ApiOkResponse({ type: SearchCacheStatsDto })
  cacheStats(): Promise<SearchCacheStatsDto> {
    return this.search.cacheStats();
  }

  /**
   * As the gateway does: errors before the first event answer with their own status; a
   * client that disconnects aborts the upstream call, which is then tracked as an estimate.
   */
  private async streamAnswer(dto: RagAnswerDto, request: FastifyRequest, reply: FastifyReply): Promise<void> {
    const abort = new AbortController();
    reply.raw.on('close', () => {
      if (!reply.raw.writableFinished) abort.abort();
    });
    const events = this.rag.stream(dto, { requestId: request.id, signal: abort.signal });
    const first = await events.next();
    reply.hijack();
    reply.raw.writeHead(200, {
      ...(reply.getHeaders() as Record<string, string>),
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache',
      connection: 'keep-alive',
    });
    try {
      for (let next = first; !next.done; next = await events.next()) {
        if (abort.signal.aborted) break;
        reply.raw.write(`data: ${JSON.stringify(next.value)}\n\n`);
      }
      if (!abort.signal.aborted) reply.raw.write('data: [DONE]\n\n');
    } catch (error) {
      if (!abort.signal.aborted) {
        reply.raw.write(`data: ${JSON.stringify({ type: 'error', message: error instanceof HttpException ? error.message : 'the answer stream failed' })}\n\n`);
      }
    } finally {
      await events.return(undefined);
      reply.raw.end();
    }
  }
}
