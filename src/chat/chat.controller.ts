import { Body, Controller, HttpCode, Post, Req } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import type { FastifyRequest } from 'fastify';
import { Access } from '../auth/access.decorator';
import { ChatService } from './chat.service';
import { ChatMessageDto } from './dto/chat-message.dto';
import { ChatMessageResponseDto } from './dto/chat-message-response.dto';
import { Idempotent } from '../idempotency/idempotent.decorator';
import { ReportsUsage } from '../limits/usage-headers.interceptor';
import { ApiErrorResponses, BODY_ERRORS } from '../common/api-responses.decorator';

@ApiTags('chat')
@Controller('chat')
export class ChatController {
  constructor(private readonly chat: ChatService) {}

  @Post('message')
  @ReportsUsage()
  @Idempotent()
  @Access('user', { owner: 'body:username' })
  @HttpCode(200)
  @ApiOperation({ summary: 'Answer a plugin question or change request; every AI call is tracked for username' })
  @ApiOkResponse({ type: ChatMessageResponseDto })
  @ApiErrorResponses(BODY_ERRORS)
  message(@Body() dto: ChatMessageDto, @Req() request: FastifyRequest): Promise<ChatMessageResponseDto> {
    return this.chat.handleMessage(dto, request.id);
  }
}
