import {
  BadRequestException,
  CanActivate,
  ExecutionContext,
  ForbiddenException,
  Injectable,
  Logger,
  UnauthorizedException,
} from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { AppConfig } from '../config/app-config';
import { ACCESS_METADATA, AccessPolicy } from './access.decorator';
import { ApiKeysService } from './api-keys.service';
import type { Principal } from './principal';
import { RateLimitService } from './rate-limit.service';

export const AUTH_DISABLED_PRINCIPAL: Principal = Object.freeze({ keyId: 'auth-disabled', role: 'admin' });

type OwnerPolicy = Extract<AccessPolicy, { level: 'user' }>['owner'];

/**
 * The one global guard: every Nest route must declare @Access, and is denied otherwise.
 * Guards run before pipes, so owner checks read the raw params, body and query; an absent
 * owner field is filled in for user keys before validation sees it.
 */
@Injectable()
export class AccessGuard implements CanActivate {
  private readonly logger = new Logger(AccessGuard.name);

  constructor(
    private readonly reflector: Reflector,
    private readonly apiKeys: ApiKeysService,
    private readonly rateLimits: RateLimitService,
    private readonly config: AppConfig,
  ) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    const policy = this.reflector.getAllAndOverride<AccessPolicy | undefined>(ACCESS_METADATA, [context.getHandler(), context.getClass()]);
    const http = context.switchToHttp();
    const request = http.getRequest<FastifyRequest>();
    const reply = http.getResponse<FastifyReply>();
    if (!policy) {
      this.logger.error(`${context.getClass().name}.${context.getHandler().name} declares no @Access(...); denied`);
      throw new ForbiddenException('This endpoint declares no access policy and is denied');
    }
    if (policy.level === 'public') return true;

    const principal = await this.authenticate(request, reply);
    request.principal = principal;
    await this.rateLimits.consume(principal, reply);
    authorize(policy, principal, request);
    return true;
  }

  private async authenticate(request: FastifyRequest, reply: FastifyReply): Promise<Principal> {
    if (this.config.AUTH_DISABLED) return AUTH_DISABLED_PRINCIPAL;
    const unauthorized = (message: string) => {
      reply.header('www-authenticate', 'Bearer realm="token-ledger"');
      return new UnauthorizedException(message);
    };
    const presented = credentialOf(request);
    if (presented === 'malformed') throw unauthorized('Authorization header must be "Bearer <API key>"');
    if (!presented) throw unauthorized('Missing API key: send "Authorization: Bearer <key>" or "x-api-key: <key>"');
    const result = await this.apiKeys.authenticate(presented);
    if ('failure' in result) throw unauthorized(result.failure === 'revoked' ? 'API key has been revoked' : 'Unknown API key');
    return result.principal;
  }
}

function credentialOf(request: FastifyRequest): string | undefined | 'malformed' {
  const authorization = request.headers.authorization;
  if (authorization !== undefined) {
    const match = /^Bearer\s+(\S+)\s*$/i.exec(authorization);
    return match ? match[1] : 'malformed';
  }
  const header = request.headers['x-api-key'];
  return typeof header === 'string' && header.length > 0 ? header : undefined;
}

/** Role and owner rules; exported for unit tests. */
export function authorize(policy: AccessPolicy, principal: Principal, request: Pick<FastifyRequest, 'params' | 'body' | 'query'>): void {
  switch (policy.level) {
    case 'public':
      return;
    case 'admin':
      if (principal.role !== 'admin') throw new ForbiddenException(`This endpoint requires an admin API key (this key's role is ${principal.role})`);
      return;
    case 'service':
      if (principal.role === 'user') throw new ForbiddenException('This endpoint requires an admin or service API key (this key\'s role is user)');
      return;
    case 'user':
      if (principal.role === 'user') enforceOwner(policy.owner, principal.userId!, request);
      return;
  }
}

function enforceOwner({ source, field }: OwnerPolicy, userId: string, request: Pick<FastifyRequest, 'params' | 'body' | 'query'>): void {
  const key = source === 'param' ? 'params' : source;
  let container = request[key];
  if (container === undefined || container === null) {
    if (source !== 'body') throw new ForbiddenException(`${field} is missing, so this API key cannot be checked against it`);
    container = request.body = {};
  }
  if (typeof container !== 'object' || Array.isArray(container)) throw new BadRequestException('Request body must be a JSON object');
  const fields = container as Record<string, unknown>;
  const value = fields[field];
  // null counts as absent: the DTOs' @IsOptional accepts it, and it must not make the call untracked.
  if (value === undefined || value === null) {
    fields[field] = userId;
    return;
  }
  if (value !== userId) {
    const shown = JSON.stringify(value) ?? String(value);
    throw new ForbiddenException(`${field} ${shown.length > 140 ? `${shown.slice(0, 140)}...` : shown} does not belong to this API key`);
  }
}
