import { Body, Controller, HttpCode, Post, Req } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import type { FastifyRequest } from 'fastify';
import { Access } from '../auth/access.decorator';
import { GeneratePluginDto, GeneratePluginOptionalUserDto } from './dto/generate-plugin.dto';
import { GeneratePluginResponseDto } from './dto/plugin-responses.dto';
import { PluginService } from './plugin.service';
import { Idempotent } from '../idempotency/idempotent.decorator';
import { ReportsUsage } from '../limits/usage-headers.interceptor';
import { ApiErrorResponses, BODY_ERRORS } from '../common/api-responses.decorator';

@ApiTags('plugin')
@Controller('plugin')
export class PluginController {
  constructor(private readonly plugins: PluginService) {}

  @Post('generate')
  @ReportsUsage()
  @Idempotent()
  @Access('user', { owner: 'body:userId' })
  @HttpCode(200)
  @ApiOperation({ summary: 'Generate a plugin project (compiled when autoCompile is true); always tracked' })
  @ApiOkResponse({ type: GeneratePluginResponseDto })
  @ApiErrorResponses(BODY_ERRORS)
  generate(@Body() dto: GeneratePluginDto, @Req() request: FastifyRequest): Promise<GeneratePluginResponseDto> {
    return this.plugins.generate(dto, 'requested', request.id);
  }

  @Post('generate-and-compile')
  @ReportsUsage()
  @Idempotent()
  @Access('user', { owner: 'body:userId' })
  @HttpCode(200)
  @ApiOperation({ summary: 'Generate and compile a plugin project; tracked when userId is given' })
  @ApiOkResponse({ type: GeneratePluginResponseDto })
  @ApiErrorResponses(BODY_ERRORS)
  generateAndCompile(@Body() dto: GeneratePluginOptionalUserDto, @Req() request: FastifyRequest): Promise<GeneratePluginResponseDto> {
    return this.plugins.generate(dto, 'always', request.id);
  }

  @Post('generate-only')
  @ReportsUsage()
  @Idempotent()
  @Access('user', { owner: 'body:userId' })
  @HttpCode(200)
  @ApiOperation({ summary: 'Generate a plugin project without compiling; tracked when userId is given' })
  @ApiOkResponse({ type: GeneratePluginResponseDto })
  @ApiErrorResponses(BODY_ERRORS)
  generateOnly(@Body() dto: GeneratePluginOptionalUserDto, @Req() request: FastifyRequest): Promise<GeneratePluginResponseDto> {
    return this.plugins.generate(dto, 'never', request.id);
  }
}
