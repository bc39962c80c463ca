import { Controller, Get, Headers, Res, UseGuards } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiProduces, ApiTags, ApiUnauthorizedResponse } from '@nestjs/swagger';
import type { FastifyReply } from 'fastify';
import { Access } from '../auth/access.decorator';
import { MetricsResponseDto } from './dto/metrics-response.dto';
import { MetricsService } from './metrics.service';
import { MetricsTokenGuard } from './metrics-token.guard';

/** JSON for people and dashboards; Prometheus text for anything that asks for text/plain or OpenMetrics. */
export function wantsPrometheus(accept: string | undefined): boolean {
  if (!accept || /application\/json/i.test(accept)) return false;
  return /text\/plain|application\/openmetrics-text/i.test(accept);
}

@ApiTags('metrics')
@Controller('metrics')
@Access('public')
@UseGuards(MetricsTokenGuard)
@ApiUnauthorizedResponse({ description: 'METRICS_TOKEN is set and the request does not carry it' })
export class MetricsController {
  constructor(private readonly metrics: MetricsService) {}

  @Get()
  @ApiOperation({ summary: 'Seed 001 metrics JSON; Prometheus text exposition with Accept: text/plain or application/openmetrics-text' })
  @ApiProduces('application/json', 'text/plain')
  @ApiOkResponse({ type: MetricsResponseDto })
  async metricsJson(@Headers('accept') accept: string | undefined, @Res({ passthrough: true }) reply: FastifyReply): Promise<MetricsResponseDto | string> {
    if (!wantsPrometheus(accept)) return this.metrics.snapshot();
    return this.prometheus(reply);
  }

  @Get('prometheus')
  @ApiOperation({ summary: 'Prometheus text exposition (format 0.0.4)' })
  @ApiProduces('text/plain')
  @ApiOkResponse({ description: 'Prometheus text exposition', schema: { type: 'string' } })
  async prometheus(@Res({ passthrough: true }) reply: FastifyReply): Promise<string> {
    reply.header('content-type', this.metrics.prometheusContentType);
    return this.metrics.prometheus();
  }
}
