import { Controller, Get, HttpStatus, Res } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiServiceUnavailableResponse, ApiTags } from '@nestjs/swagger';
import type { FastifyReply } from 'fastify';
import { Access } from '../auth/access.decorator';
import { LivenessDto, ReadinessDto } from './health.dto';
import { HealthService } from './health.service';

@ApiTags('health')
@Controller('health')
@Access('public')
export class HealthController {
  constructor(private readonly health: HealthService) {}

  @Get()
  @ApiOperation({ summary: 'Is the process up? (liveness; no dependencies checked)' })
  @ApiOkResponse({ type: LivenessDto })
  live(): LivenessDto {
    return this.health.liveness();
  }

  @Get('ready')
  @ApiOperation({ summary: 'Can it serve? MongoDB reachable (readiness), with Redis and the ledger outbox reported' })
  @ApiOkResponse({ type: ReadinessDto, description: 'MongoDB reachable' })
  @ApiServiceUnavailableResponse({ type: ReadinessDto, description: 'MongoDB unreachable' })
  async ready(@Res({ passthrough: true }) reply: FastifyReply): Promise<ReadinessDto> {
    const readiness = await this.health.readiness();
    reply.status(readiness.status === 'ok' ? HttpStatus.OK : HttpStatus.SERVICE_UNAVAILABLE);
    return readiness;
  }
}
