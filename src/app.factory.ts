import { BadRequestException } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { FastifyAdapter, NestFastifyApplication } from '@nestjs/platform-fastify';
import { DocumentBuilder, SwaggerModule } from '@nestjs/swagger';
import type { IncomingMessage } from 'node:http';
import { randomUUID } from 'node:crypto';
import { Logger } from 'nestjs-pino';
import { FastifyReply, LogController } from 'fastify';
import pino from 'pino';
import { AppModule } from './app.module';
import { API_KEY_SCHEME, BEARER_SCHEME, METRICS_SCHEME } from './auth/access.decorator';
import type { Principal } from './auth/principal';
import { AllExceptionsFilter } from './common/all-exceptions.filter';
import { bodyShapeProblem } from './common/body-shape';
import { BootstrapLogger } from './common/bootstrap-logger';
import { registerHttpSecurity } from './common/http-security';
import { registerTextPlainJson } from './common/text-plain-json';
import { createValidationPipe } from './common/validation.pipe';
import type { AppConfig } from './config/app-config';

const CLIENT_REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/** Honour a well-formed client request id; anything else (including header injection attempts) gets a fresh one. */
function requestIdOf(request: IncomingMessage): string {
  const header = request.headers['x-request-id'];
  return typeof header === 'string' && CLIENT_REQUEST_ID.test(header) ? header : randomUUID();
}

function userIdOf(request: { principal?: Principal; params?: unknown; body?: unknown; query?: unknown }): string | undefined {
  if (request.principal?.userId) return request.principal.userId;
  for (const source of [request.params, request.body, request.query]) {
    if (!source || typeof source !== 'object') continue;
    const candidate = source as Record<string, unknown>;
    const value = candidate.userId ?? candidate.user_id ?? candidate.username;
    if (typeof value === 'string') return value.slice(0, 128);
  }
  return undefined;
}

/**
 * A handler that answered by itself (hijacked the reply to stream server-sent events) returns
 * nothing, and Nest would send that nothing again: Fastify then logs FST_ERR_REP_ALREADY_SENT.
 */
class FastifyAdapterForStreams extends FastifyAdapter {
  override reply(response: FastifyReply, body: unknown, statusCode?: number) {
    if (body === undefined && (response as { sent?: boolean }).sent === true) return response;
    return super.reply(response, body, statusCode);
  }
}

export interface CreateAppOptions {
  /** Where the JSON log goes (default stdout); tests keep it in memory. */
  logDestination?: pino.DestinationStream;
}

/** Builds the whole application (not yet listening); shared by main.ts, tests and benchmarks. */
export async function createApp(config: AppConfig, options: CreateAppOptions = {}): Promise<NestFastifyApplication> {
  const logger = pino(
    {
      level: config.LOG_LEVEL,
      base: { service: 'token-ledger' },
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: ['req.headers.authorization', 'req.headers["x-api-key"]'],
    },
    options.logDestination,
  );
  const adapter = new FastifyAdapterForStreams({
    loggerInstance: logger,
    // One line per request comes from the onResponse hook below, with the user id.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: config.BODY_LIMIT_BYTES,
    // Long enough that an over-long id reaches validation and gets a 400 naming the field.
    routerOptions: { maxParamLength: 512 },
    genReqId: requestIdOf,
    return503OnClosing: true,
    forceCloseConnections: 'idle',
  });
  const app = await NestFactory.create<NestFastifyApplication>(AppModule.forRoot(config, logger), adapter, {
    logger: new BootstrapLogger(logger),
    // A failed start rejects (main.ts says why in one line) instead of Nest exiting the process.
    abortOnError: false,
  });
  app.useLogger(app.get(Logger));
  app.useGlobalPipes(createValidationPipe());
  app.useGlobalFilters(new AllExceptionsFilter());
  await registerHttpSecurity(app, config);

  const fastify = app.getHttpAdapter().getInstance();
  registerTextPlainJson(fastify);
  fastify.addHook('onRequest', async (request, reply) => {
    reply.header('x-request-id', request.id);
  });
  // Before guards and validation, for whatever content type parsed into JSON.
  fastify.addHook('preValidation', async (request) => {
    const problem = bodyShapeProblem(request.body);
    if (problem) throw new BadRequestException(problem);
  });
  fastify.addHook('onResponse', async (request, reply) => {
    request.log.info(
      {
        method: request.method,
        url: request.url,
        userId: userIdOf(request),
        apiKeyId: request.principal?.keyId,
        statusCode: reply.statusCode,
        latencyMs: Math.round(reply.elapsedTime * 100) / 100,
      },
      'request completed',
    );
  });

  const documentConfig = new DocumentBuilder()
    .setTitle('token-ledger')
    .setDescription('AI chat, code and plugin generation with an exact per-user token and cost ledger')
    .setVersion('0.1.0')
    .addServer('/', 'This service')
    .addBearerAuth({ type: 'http', scheme: 'bearer', description: 'API key: Authorization: Bearer tl_...' }, BEARER_SCHEME)
    .addApiKey({ type: 'apiKey', in: 'header', name: 'x-api-key', description: 'API key in the x-api-key header' }, API_KEY_SCHEME)
    .addBearerAuth({ type: 'http', scheme: 'bearer', description: 'METRICS_TOKEN, needed only when it is set' }, METRICS_SCHEME)
    .build();
  documentConfig.info.license = { name: 'UNLICENSED' };
  const document = SwaggerModule.createDocument(app, documentConfig);
  SwaggerModule.setup('docs', app, document, { jsonDocumentUrl: 'docs-json' });
  return app;
}
