import helmet from '@fastify/helmet';
import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import type { AppConfig } from '../config/app-config';

/** CORS_ORIGINS unset outside production: pages served from this machine, on any port. */
export const LOCAL_DEVELOPMENT_ORIGINS = ['http://localhost:*', 'http://127.0.0.1:*', 'http://[::1]:*'];

export const CORS_ALLOWED_HEADERS = ['authorization', 'x-api-key', 'content-type', 'idempotency-key', 'x-request-id'];
export const CORS_EXPOSED_HEADERS = [
  'x-request-id',
  'retry-after',
  'x-ratelimit-limit',
  'x-ratelimit-remaining',
  'x-ratelimit-reset',
  'x-ratelimit-limit-tokens',
  'x-ratelimit-remaining-tokens',
  'x-ratelimit-reset-tokens',
  'x-token-ledger-tier',
  'x-token-ledger-remaining-daily-tokens',
  'x-token-ledger-remaining-monthly-usd',
  'x-next-cursor',
  'idempotent-replayed',
];

export function corsOrigins(config: Pick<AppConfig, 'CORS_ORIGINS' | 'NODE_ENV'>): string[] {
  if (config.CORS_ORIGINS === undefined) return config.NODE_ENV === 'production' ? [] : LOCAL_DEVELOPMENT_ORIGINS;
  return config.CORS_ORIGINS.split(',').map((origin) => origin.trim().replace(/\/$/, '')).filter(Boolean);
}

/** Origins as listed, where a port of `*` stands for any port (e.g. http://localhost:*). */
export function originMatcher(origins: readonly string[]): (origin: string) => boolean {
  const exact = new Set(origins.filter((origin) => !origin.endsWith(':*')));
  const anyPort = origins.filter((origin) => origin.endsWith(':*')).map((origin) => origin.slice(0, -2));
  return (origin) => {
    if (exact.has(origin)) return true;
    const match = /^(https?:\/\/(?:\[[^\]]+\]|[^:/]+))(?::(\d{1,5}))?$/.exec(origin);
    return match !== null && anyPort.includes(match[1]);
  };
}

/**
 * Security headers on every response (helmet's defaults: its CSP allows exactly what the
 * Swagger UI at /docs needs: scripts from self, inline styles, data: images) and CORS limited
 * to CORS_ORIGINS (unset: local development origins, none in production). A preflight from
 * an allowed origin answers 204 with the methods and headers a client sends; from any other
 * origin it gets no CORS headers, so browsers keep to same-origin.
 */
export async function registerHttpSecurity(app: NestFastifyApplication, config: AppConfig): Promise<void> {
  await app.register(helmet, { global: true });
  const allowed = originMatcher(corsOrigins(config));
  app.enableCors({
    origin: (origin, callback) => callback(null, origin !== undefined && allowed(origin) ? origin : false),
    methods: ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE'],
    allowedHeaders: CORS_ALLOWED_HEADERS,
    exposedHeaders: CORS_EXPOSED_HEADERS,
    // Keys travel in headers, never cookies.
    credentials: false,
    maxAge: 600,
  });
}
