import helmet from '@fastify/helmet';
import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import type { AppConfig } from '../config/app-config';

export function corsOrigins(config: Pick<AppConfig, 'CORS_ORIGINS'>): string[] {
  return (config.CORS_ORIGINS ?? '').split(',').map((origin) => origin.trim().replace(/\/$/, '')).filter(Boolean);
}

/**
 * Security headers on every response (helmet's defaults: its CSP allows exactly what the
 * Swagger UI at /docs needs: scripts from self, inline styles, data: images) and CORS
 * limited to CORS_ORIGINS. With no origins configured, no CORS headers are sent and a
 * preflight answers 404, so browsers keep to same-origin.
 */
export async function registerHttpSecurity(app: NestFastifyApplication, config: AppConfig): Promise<void> {
  await app.register(helmet, { global: true });
  const allowed = new Set(corsOrigins(config));
  app.enableCors({
    origin: (origin, callback) => callback(null, origin !== undefined && allowed.has(origin) ? origin : false),
    methods: ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE'],
    allowedHeaders: ['authorization', 'x-api-key', 'content-type', 'x-request-id'],
    exposedHeaders: ['x-request-id', 'retry-after', 'x-ratelimit-limit', 'x-ratelimit-remaining', 'x-ratelimit-reset'],
    // Keys travel in headers, never cookies.
    credentials: false,
    maxAge: 600,
  });
}
