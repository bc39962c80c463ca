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
  await app.listen(config.PORT, config.HOST);
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

void bootstrap();
