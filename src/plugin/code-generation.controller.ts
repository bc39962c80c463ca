import { Body, Controller, HttpCode, Post, Req } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import type { FastifyRequest } from 'fastify';
import { Access } from '../auth/access.decorator';
import { GenerateCodeDto } from './dto/generate-code.dto';
import { GenerateCodeResponseDto } from './dto/plugin-responses.dto';
import { PluginService } from './plugin.service';
import { Idempotent } from '../idempotency/idempotent.decorator';
import { ReportsUsage } from '../limits/usage-headers.interceptor';
import { ApiErrorResponses, BODY_ERRORS } from '../common/api-responses.decorator';

@ApiTags('ai')
@Controller('ai')
export class CodeGenerationController {
  constructor(private readonly plugins: PluginService) {}

  @Post('generate-code')
  @ReportsUsage()
  @Idempotent()
  @Access('user', { owner: 'body:userId' })
  @HttpCode(200)
  @ApiOperation({ summary: 'Enhance the prompt, then generate plugin code; tracked when userId is given' })
  @ApiOkResponse({ type: GenerateCodeResponseDto })
  @ApiErrorResponses(BODY_ERRORS)
  generateCode(@Body() dto: GenerateCodeDto, @Req() request: FastifyRequest): Promise<GenerateCodeResponseDto> {
    return this.plugins.generateCode(dto, request.id);
  }
}
