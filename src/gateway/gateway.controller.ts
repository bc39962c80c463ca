import { BadRequestException, Body, Controller, Get, HttpCode, Post, Req, Res } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import type { HeaderObject } from '@nestjs/swagger';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { randomUUID } from 'node:crypto';
import type { AiStreamEvent } from '../ai/ai.service';
import { Access } from '../auth/access.decorator';
import { AI_ERRORS, ApiErrorResponses, ApiOkJsonOr, ApiSuccessHeaders, BODY_ERRORS } from '../common/api-responses.decorator';
import { SerialisedInSlices } from '../common/sliced-json.interceptor';
import { Idempotent } from '../idempotency/idempotent.decorator';
import { UsageLimitsService } from '../limits/usage-limits.service';
import { ChatCompletionRequestDto } from './dto/chat-completion-request.dto';
import { ChatCompletionResponseDto } from './dto/chat-completion-response.dto';
import { EmbeddingsRequestDto } from './dto/embeddings-request.dto';
import { EmbeddingsResponseDto } from './dto/embeddings-response.dto';
import { ModelListResponseDto } from './dto/model-list-response.dto';
import { GatewayService, LedgerFigures } from './gateway.service';

const LEDGER_HEADER = 'x-token-ledger';

const integer = (description: string): HeaderObject => ({ description, schema: { type: 'integer' } });
const LEDGER_HEADERS: Record<string, HeaderObject> = {
  [`${LEDGER_HEADER}-user`]: { description: 'Whose usage this was', schema: { type: 'string' } },
  [`${LEDGER_HEADER}-prompt-tokens`]: integer('Prompt tokens billed for this request (every provider call it made)'),
  [`${LEDGER_HEADER}-completion-tokens`]: integer('Completion tokens billed for this request'),
  [`${LEDGER_HEADER}-total-tokens`]: integer('Tokens billed for this request'),
  [`${LEDGER_HEADER}-cost-usd`]: { description: 'Cost of this request in USD', schema: { type: 'string', example: '0.000123' } },
  [`${LEDGER_HEADER}-estimated`]: { description: 'true when a count came from the tokenizer instead of the provider', schema: { type: 'string', enum: ['true', 'false'] } },
  [`${LEDGER_HEADER}-tracking-enabled`]: { description: 'false when the ledger could not be written', schema: { type: 'string', enum: ['true', 'false'] } },
  [`${LEDGER_HEADER}-tier`]: { description: "The user's tier", schema: { type: 'string' } },
  [`${LEDGER_HEADER}-remaining-tokens`]: integer('Tokens left in the 24-hour window (absent when unlimited)'),
  [`${LEDGER_HEADER}-remaining-usd`]: { description: 'USD left this month (absent without a monthly cost limit)', schema: { type: 'string', example: '0.950000' } },
  [`${LEDGER_HEADER}-reset`]: { description: 'When the 24-hour window resets (ISO 8601)', schema: { type: 'string', format: 'date-time' } },
};

/** OpenAI-compatible endpoints, so unmodified OpenAI clients are tracked per user. */
@ApiTags('openai-compatible')
@Controller('v1')
export class GatewayController {
  constructor(
    private readonly gateway: GatewayService,
    private readonly limits: UsageLimitsService,
  ) {}

  @Post('chat/completions')
  @HttpCode(200)
  @Access('user', { owner: 'body:user' })
  @Idempotent()
  @ApiOperation({
    summary: 'Create a chat completion (OpenAI-compatible)',
    description: 'Tracked for `user` (a user key acts as its own user). With stream: true the answer is server-sent chat.completion.chunk events; stream_options.include_usage adds a usage chunk with the ledger figures.',
  })
  @ApiOkJsonOr(ChatCompletionResponseDto, {
    'text/event-stream': {
      schema: { type: 'string' },
      example: 'data: {"id":"chatcmpl-1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"Hi"},"finish_reason":null}]}\n\ndata: [DONE]\n\n',
    },
  }, 'The completion; with stream: true, chat.completion.chunk events ending in [DONE]')
  @ApiSuccessHeaders(LEDGER_HEADERS)
  @ApiErrorResponses(BODY_ERRORS, AI_ERRORS)
  async chatCompletions(
    @Body() dto: ChatCompletionRequestDto,
    @Req() request: FastifyRequest,
    @Res({ passthrough: true }) reply: FastifyReply,
  ): Promise<ChatCompletionResponseDto | void> {
    const userId = requireUser(dto.user);
    if (dto.stream) return this.streamCompletion(dto, userId, request, reply);
    const { body, figures } = await this.gateway.complete(dto, { userId, requestId: request.id });
    await this.setLedgerHeaders(reply, userId, figures);
    return body;
  }

  @Post('embeddings')
  @HttpCode(200)
  @Access('user', { owner: 'body:user' })
  @Idempotent()
  @SerialisedInSlices()
  @ApiOperation({ summary: 'Create embeddings (OpenAI-compatible)', description: 'Tracked for `user`; texts already in the embedding cache cost no tokens.' })
  @ApiOkResponse({ type: EmbeddingsResponseDto })
  @ApiSuccessHeaders({ ...LEDGER_HEADERS, [`${LEDGER_HEADER}-cache-hits`]: integer('Inputs answered from the embedding cache') })
  @ApiErrorResponses(BODY_ERRORS, AI_ERRORS)
  async embeddings(
    @Body() dto: EmbeddingsRequestDto,
    @Req() request: FastifyRequest,
    @Res({ passthrough: true }) reply: FastifyReply,
  ): Promise<EmbeddingsResponseDto> {
    const userId = requireUser(dto.user);
    const { body, figures } = await this.gateway.embed(dto, { userId, requestId: request.id });
    await this.setLedgerHeaders(reply, userId, figures);
    reply.header(`${LEDGER_HEADER}-cache-hits`, String(figures.cacheHits));
    return body;
  }

  @Get('models')
  // Any key may list models (OpenAI clients do this with whatever key they hold).
  @Access('user', { owner: 'query:user' })
  @ApiOperation({ summary: 'List the models this service answers with (OpenAI-compatible)' })
  @ApiOkResponse({ type: ModelListResponseDto })
  @ApiErrorResponses('validation')
  models(): ModelListResponseDto {
    return this.gateway.models();
  }

  /**
   * Headers go out with the first event, so errors before it (limits, provider failures)
   * still answer with their own status. A client that disconnects aborts the upstream call;
   * what was streamed is then tracked as an estimate.
   */
  private async streamCompletion(dto: ChatCompletionRequestDto, userId: string, request: FastifyRequest, reply: FastifyReply): Promise<void> {
    const abort = new AbortController();
    reply.raw.on('close', () => {
      if (!reply.raw.writableFinished) abort.abort();
    });
    const events = this.gateway.stream(dto, { userId, requestId: request.id, signal: abort.signal });
    const first = await events.next();

    const id = `chatcmpl-${randomUUID()}`;
    const created = Math.floor(Date.now() / 1000);
    const chunk = (delta: Record<string, unknown>, finishReason: string | null = null) =>
      `data: ${JSON.stringify({ id, object: 'chat.completion.chunk', created, model: dto.model, system_fingerprint: null, choices: [{ index: 0, delta, logprobs: null, finish_reason: finishReason }] })}\n\n`;
    reply.hijack();
    reply.raw.writeHead(200, {
      ...(reply.getHeaders() as Record<string, string>),
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache',
      connection: 'keep-alive',
      [`${LEDGER_HEADER}-user`]: userId,
    });
    reply.raw.write(chunk({ role: 'assistant', content: '' }));
    try {
      for (let next = first; !next.done; next = await events.next()) {
        const event: AiStreamEvent = next.value;
        if (abort.signal.aborted) break;
        if (event.type === 'delta') {
          reply.raw.write(chunk({ content: event.text }));
          continue;
        }
        const { result } = event;
        // Every chunk names the model the client asked for; the ledger keeps the one the provider reported.
        reply.raw.write(chunk({}, result.finishReason ?? 'stop'));
        if (dto.stream_options?.include_usage) {
          const figures = this.gateway.figuresOf(result);
          reply.raw.write(
            `data: ${JSON.stringify({
              id,
              object: 'chat.completion.chunk',
              created,
              model: dto.model,
              system_fingerprint: null,
              choices: [],
              usage: { prompt_tokens: result.usage.promptTokens, completion_tokens: result.usage.completionTokens, total_tokens: result.usage.totalTokens },
              [LEDGER_HEADER.replace(/-/g, '_')]: { cost_usd: figures.costUsd, estimated: figures.estimated, tracking_enabled: figures.trackingEnabled },
            })}\n\n`,
          );
        }
      }
      if (!abort.signal.aborted) reply.raw.write('data: [DONE]\n\n');
    } catch (error) {
      if (!abort.signal.aborted) {
        const message = error instanceof Error ? error.message : 'stream failed';
        reply.raw.write(`data: ${JSON.stringify({ error: { message, type: 'upstream_error', code: null } })}\n\n`);
      }
    } finally {
      await events.return(undefined);
      reply.raw.end();
    }
  }

  private async setLedgerHeaders(reply: FastifyReply, userId: string, figures: LedgerFigures): Promise<void> {
    reply.header(`${LEDGER_HEADER}-user`, userId);
    reply.header(`${LEDGER_HEADER}-prompt-tokens`, String(figures.promptTokens));
    reply.header(`${LEDGER_HEADER}-completion-tokens`, String(figures.completionTokens));
    reply.header(`${LEDGER_HEADER}-total-tokens`, String(figures.totalTokens));
    reply.header(`${LEDGER_HEADER}-cost-usd`, figures.costUsd.toFixed(6));
    reply.header(`${LEDGER_HEADER}-estimated`, String(figures.estimated));
    reply.header(`${LEDGER_HEADER}-tracking-enabled`, String(figures.trackingEnabled));
    const state = await this.limits.stateAfter(userId, figures.window);
    reply.header(`${LEDGER_HEADER}-tier`, state.tier);
    if (state.remaining?.rolling24hTokens != null) reply.header(`${LEDGER_HEADER}-remaining-tokens`, String(state.remaining.rolling24hTokens));
    if (state.remaining?.monthlyCostUsd != null) reply.header(`${LEDGER_HEADER}-remaining-usd`, state.remaining.monthlyCostUsd.toFixed(6));
    if (state.resetAt) reply.header(`${LEDGER_HEADER}-reset`, state.resetAt.toISOString());
  }
}

/** A user key has filled `user` in already; admin and service keys must say whom they act for. */
function requireUser(user: string | undefined): string {
  if (!user) throw new BadRequestException('user is required when calling with an admin or service key');
  return user;
}
