import { Logger } from '@nestjs/common';
import pino from 'pino';
import { createApp } from './app.factory';
import { BOOTSTRAP_ADMIN_KEY, BootstrapAdminKey, NoBootstrapAdminKey, isBootstrapAdminKey } from './auth/bootstrap-admin-key';
import { devAdminKeyBanner, localBaseUrl } from './common/startup-banner';
import { ConfigValidationError } from './config/app-config';
import { loadConfig } from './config/load-config';

async function bootstrap(): Promise<void> {
  let config;
  try {
    config = loadConfig();
  } catch (error) {
    if (error instanceof ConfigValidationError) {
      process.stderr.write(`${error.message}\n`);
      process.exit(1);
    }
    throw error;
  }
  const app = await createApp(config);
  app.enableShutdownHooks(['SIGTERM', 'SIGINT']);
  try {
    await app.listen(config.PORT, config.HOST);
  } catch (error) {
    await app.close().catch(() => undefined);
    throw new Error(listenFailure(error as NodeJS.ErrnoException, config.HOST, config.PORT));
  }
  const logger = new Logger('Bootstrap');
  const baseUrl = localBaseUrl(config.HOST, app.getHttpServer().address());
  logger.log(`token-ledger listening on ${baseUrl} (Swagger UI at ${baseUrl}/docs, dashboard at ${baseUrl}/usage)`);
  const bootstrapKey = app.get<BootstrapAdminKey | NoBootstrapAdminKey>(BOOTSTRAP_ADMIN_KEY);
  if (isBootstrapAdminKey(bootstrapKey) && bootstrapKey.source !== 'config') {
    // Through the log's own (asynchronous) destination, so the banner lands after the start-up lines queued before it.
    const destination = (app.getHttpAdapter().getInstance().log as unknown as Record<symbol, NodeJS.WritableStream>)[pino.symbols.streamSym];
    destination.write(`${devAdminKeyBanner(baseUrl, bootstrapKey)}\n`);
  }

  // Nest closes HTTP (waiting for in-flight requests) before the shutdown hooks flush writes;
  // this bounds the whole sequence so a stuck dependency cannot keep the process alive.
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    process.once(signal, () => {
      setTimeout(() => {
        logger.error(`Shutdown did not finish within ${config.SHUTDOWN_TIMEOUT_MS} ms; exiting`);
        process.exit(1);
      }, config.SHUTDOWN_TIMEOUT_MS).unref();
    });
  }
}

function listenFailure(error: NodeJS.ErrnoException, host: string, port: number): string {
  if (error.code === 'EADDRINUSE') return `port ${port} on ${host} is already in use (is another token-ledger running?): stop it or set PORT`;
  if (error.code === 'EACCES') return `no permission to listen on port ${port}: set PORT to a port above 1023`;
  return `cannot listen on ${host}:${port}: ${error.message}`;
}

bootstrap().catch((error: unknown) => {
  // The cause is in the JSON log above (with its stack); the terminal gets one line.
  const reason = error instanceof Error ? error.message.split('\n')[0] : String(error);
  process.stderr.write(`token-ledger could not start: ${reason}\n`);
  process.exit(1);
});
