import { Controller, Get, Headers, Res, UseGuards } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiProduces, ApiSecurity, ApiTags } from '@nestjs/swagger';
import type { FastifyReply } from 'fastify';
import { Access, METRICS_SCHEME } from '../auth/access.decorator';
import { ApiErrorResponses, ApiOkJsonOr } from '../common/api-responses.decorator';
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
@ApiSecurity(METRICS_SCHEME)
@ApiErrorResponses({ kind: 'unauthorized', description: 'METRICS_TOKEN is set and the request does not carry it' })
export class MetricsController {
  constructor(private readonly metrics: MetricsService) {}

  @Get()
  @ApiOperation({
    summary: 'Service metrics: requests, errors, latency, tokens and cost',
    description: 'JSON by default; Prometheus text exposition with Accept: text/plain or application/openmetrics-text.',
  })
  @ApiOkJsonOr(MetricsResponseDto, { 'text/plain': { schema: { type: 'string' }, example: '# HELP noki_ai_tokens_total Tokens used, by type (seed metric name)\n# TYPE noki_ai_tokens_total counter\nnoki_ai_tokens_total{type="prompt"} 1250\n' } }, 'Metrics as JSON, or Prometheus text')
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
