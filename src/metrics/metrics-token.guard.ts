import { CanActivate, ExecutionContext, Injectable, UnauthorizedException } from '@nestjs/common';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { secretsEqual } from '../auth/api-key';
import { AppConfig } from '../config/app-config';

/** /metrics is public unless METRICS_TOKEN is set; then it needs `Authorization: Bearer <METRICS_TOKEN>`. */
@Injectable()
export class MetricsTokenGuard implements CanActivate {
  constructor(private readonly config: AppConfig) {}

  canActivate(context: ExecutionContext): boolean {
    const expected = this.config.METRICS_TOKEN;
    if (!expected) return true;
    const request = context.switchToHttp().getRequest<FastifyRequest>();
    const presented = /^Bearer\s+(\S+)\s*$/i.exec(request.headers.authorization ?? '')?.[1];
    if (presented && secretsEqual(presented, expected)) return true;
    context.switchToHttp().getResponse<FastifyReply>().header('www-authenticate', 'Bearer realm="metrics"');
    throw new UnauthorizedException('This metrics endpoint needs "Authorization: Bearer <METRICS_TOKEN>"');
  }
}
