import { createParamDecorator, ExecutionContext } from '@nestjs/common';
import type { FastifyRequest } from 'fastify';

export const ROLES = ['admin', 'service', 'user'] as const;
export type Role = (typeof ROLES)[number];

/** Who is calling: set on the request by AccessGuard for every non-public route. */
export interface Principal {
  /** The api_keys document id, or `bootstrap-admin` (ADMIN_API_KEY) / `auth-disabled`. */
  keyId: string;
  role: Role;
  /** Set for user keys only: the one user such a key may act as. */
  userId?: string;
}

declare module 'fastify' {
  interface FastifyRequest {
    principal?: Principal;
  }
}

/** The authenticated principal of this request (undefined on public routes). */
export const Principal = createParamDecorator(
  (_data: unknown, context: ExecutionContext): Principal | undefined => context.switchToHttp().getRequest<FastifyRequest>().principal,
);
