import { Global, Inject, Injectable, Module, OnApplicationShutdown } from '@nestjs/common';
import { MongooseModule } from '@nestjs/mongoose';
import { AppConfig } from '../config/app-config';
import { ResolvedDatabase, resolveDatabase } from './database-resolver';
import { installDriverSocketGuard } from './driver-socket-guard';

installDriverSocketGuard();

export const RESOLVED_DATABASE = Symbol('RESOLVED_DATABASE');

@Injectable()
class DatabaseLifecycle implements OnApplicationShutdown {
  constructor(@Inject(RESOLVED_DATABASE) private readonly database: ResolvedDatabase) {}

  async onApplicationShutdown(): Promise<void> {
    await this.database.stop();
  }
}

@Global()
@Module({
  providers: [
    { provide: RESOLVED_DATABASE, inject: [AppConfig], useFactory: (config: AppConfig) => resolveDatabase(config) },
    DatabaseLifecycle,
  ],
  exports: [RESOLVED_DATABASE],
})
class DatabaseResolverModule {}

@Module({
  imports: [
    DatabaseResolverModule,
    MongooseModule.forRootAsync({
      inject: [AppConfig, RESOLVED_DATABASE],
      useFactory: (config: AppConfig, database: ResolvedDatabase) => ({
        uri: database.uri,
        dbName: config.MONGODB_DB_NAME,
        directConnection: database.kind !== 'external' ? true : undefined,
        serverSelectionTimeoutMS: config.MONGODB_SERVER_SELECTION_TIMEOUT_MS,
        // Fail fast instead of queueing writes while disconnected: the ledger decides what to do.
        bufferCommands: false,
        autoIndex: true,
        // Command events for tools that count commands (tests, bench/ledger.ts); off in production.
        monitorCommands: config.MONGODB_MONITOR_COMMANDS,
      }),
    }),
  ],
  exports: [DatabaseResolverModule],
})
export class DatabaseModule {}
