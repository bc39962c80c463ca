import type { FastifyInstance, FastifyRequest } from 'fastify';

/** Route config flag (@RouteConfig) of routes that take a JSON body sent as text/plain. */
export const TEXT_PLAIN_JSON = 'textPlainJson';

declare module 'fastify' {
  interface FastifyContextConfig {
    [TEXT_PLAIN_JSON]?: boolean;
  }
}

const clientError = (statusCode: number, message: string) => Object.assign(new Error(message), { statusCode });

/**
 * Every body this API takes is JSON. A text/plain body is parsed as JSON only on routes that
 * opt in, because a browser's fetch() sends a string body as text/plain; elsewhere it gets 415
 * instead of reaching validation as a string.
 */
export function registerTextPlainJson(fastify: FastifyInstance): void {
  fastify.removeContentTypeParser('text/plain');
  fastify.addContentTypeParser('text/plain', { parseAs: 'string' }, (request: FastifyRequest, body: string | Buffer, done) => {
    if (request.routeOptions.config?.[TEXT_PLAIN_JSON] !== true) {
      done(clientError(415, 'Unsupported Media Type: text/plain; send the body as application/json'), undefined);
      return;
    }
    try {
      done(null, JSON.parse(body.toString()));
    } catch {
      done(clientError(400, 'Body is not valid JSON (a text/plain body must hold JSON)'), undefined);
    }
  });
}
