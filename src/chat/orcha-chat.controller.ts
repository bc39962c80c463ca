import { Body, Controller, HttpCode, Post, Req } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import type { FastifyRequest } from 'fastify';
import { OrchaChatDto } from './dto/orcha-chat.dto';
import { OrchaChatResponseDto } from './dto/orcha-chat-response.dto';
import { OrchaChatService } from './orcha-chat.service';
import { Access } from '../auth/access.decorator';
import { Idempotent } from '../idempotency/idempotent.decorator';
import { ReportsUsage } from '../limits/usage-headers.interceptor';
import { ApiErrorResponses, BODY_ERRORS } from '../common/api-responses.decorator';

@ApiTags('chat')
@Controller('api/v1/orcha')
export class OrchaChatController {
  constructor(private readonly orcha: OrchaChatService) {}

  @Post('chat')
  @ReportsUsage()
  @Idempotent()
  @Access('user', { owner: 'body:user_id' })
  @HttpCode(200)
  @ApiOperation({ summary: 'Chat; the answer carries the 24-hour rolling window and this request\'s usage' })
  @ApiOkResponse({ type: OrchaChatResponseDto })
  @ApiErrorResponses(BODY_ERRORS)
  chat(@Body() dto: OrchaChatDto, @Req() request: FastifyRequest): Promise<OrchaChatResponseDto> {
    return this.orcha.chat(dto, request.id);
  }
}
