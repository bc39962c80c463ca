import { Body, Controller, HttpCode, Post, Req } from '@nestjs/common';
import { RouteConfig } from '@nestjs/platform-fastify';
import { ApiConsumes, ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import type { FastifyRequest } from 'fastify';
import { Access } from '../auth/access.decorator';
import { ApiErrorResponses, BODY_ERRORS } from '../common/api-responses.decorator';
import { TEXT_PLAIN_JSON } from '../common/text-plain-json';
import { Idempotent } from '../idempotency/idempotent.decorator';
import { ReportsUsage } from '../limits/usage-headers.interceptor';
import { AssistantChatService } from './assistant-chat.service';
import { AiResponseDto } from './dto/ai-response.dto';
import { AssistantChatDto } from './dto/assistant-chat.dto';

@ApiTags('chat')
@Controller('chat')
export class AssistantChatController {
  constructor(private readonly assistant: AssistantChatService) {}

  @Post()
  @ReportsUsage()
  @Idempotent()
  @Access('user', { owner: 'body:user_id' })
  @HttpCode(200)
  // fetch() with a string body and no Content-Type sends text/plain, as seed 001's frontend example does.
  @RouteConfig({ [TEXT_PLAIN_JSON]: true })
  @ApiConsumes('application/json', 'text/plain')
  @ApiOperation({
    summary: 'Chat with the assistant in a conversation',
    description:
      'Answers the message after the earlier turns of conversation_id (kept per user), tracked for user_id as orcha_chat. ' +
      'The body may be sent as text/plain holding JSON.',
  })
  @ApiOkResponse({ type: AiResponseDto })
  @ApiErrorResponses(BODY_ERRORS)
  chat(@Body() dto: AssistantChatDto, @Req() request: FastifyRequest): Promise<AiResponseDto> {
    return this.assistant.chat(dto, request.id);
  }
}
