import { Logger } from '@nestjs/common';
import { createApp } from './app.factory';
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
  logger.log(`token-ledger listening on http://${config.HOST}:${config.PORT} (Swagger UI at /docs)`);

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
