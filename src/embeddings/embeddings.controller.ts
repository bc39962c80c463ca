import { Body, Controller, Delete, Get, HttpCode, Param, Post, Query, Req } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import type { FastifyRequest } from 'fastify';
import { Access } from '../auth/access.decorator';
import { Idempotent } from '../idempotency/idempotent.decorator';
import { DeleteResourceResponseDto } from './dto/delete-resource-response.dto';
import { EmbeddingCacheStatsDto, EmbedResourceResponseDto } from './dto/embed-resource-response.dto';
import { EmbedResourceDto } from './dto/embed-resource.dto';
import { ResourceIdParamDto, ResourceOwnerQueryDto } from './dto/resource-owner.dto';
import { EmbeddingsService } from './embeddings.service';
import { ReportsUsage } from '../limits/usage-headers.interceptor';
import { ApiErrorResponses, BODY_ERRORS } from '../common/api-responses.decorator';

@ApiTags('embeddings')
@Controller('embeddings')
export class EmbeddingsController {
  constructor(private readonly embeddings: EmbeddingsService) {}

  @Post()
  @ReportsUsage()
  @HttpCode(200)
  @Access('user', { owner: 'body:userId' })
  @Idempotent()
  @ApiOperation({
    summary: 'Embed a resource for semantic search; cached chunks cost no tokens',
    description: "One text or many, split in token chunks. With a userId the chunks become that user's searchable resource, replacing earlier ones.",
  })
  @ApiOkResponse({ type: EmbedResourceResponseDto })
  @ApiErrorResponses(BODY_ERRORS)
  embed(@Body() dto: EmbedResourceDto, @Req() request: FastifyRequest): Promise<EmbedResourceResponseDto> {
    return this.embeddings.embedResource(dto, request.id);
  }

  @Delete(':resourceId')
  @Access('user', { owner: 'query:userId' })
  @ApiOperation({ summary: "Remove a resource's stored chunks from the owner's search" })
  @ApiOkResponse({ type: DeleteResourceResponseDto })
  @ApiErrorResponses('validation', { kind: 'not-found', description: 'The user has no stored chunks of this resource' })
  remove(@Param() params: ResourceIdParamDto, @Query() query: ResourceOwnerQueryDto): Promise<DeleteResourceResponseDto> {
    return this.embeddings.removeResource(query.userId, params.resourceId);
  }

  @Get('cache/stats')
  @Access('admin')
  @ApiOperation({ summary: 'Embedding cache hit rate and size (admin)' })
  @ApiOkResponse({ type: EmbeddingCacheStatsDto })
  cacheStats(): Promise<EmbeddingCacheStatsDto> {
    return this.embeddings.cacheStats();
  }
}
