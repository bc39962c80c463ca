import { DynamicModule, Module } from '@nestjs/common';
import { LoggerModule } from 'nestjs-pino';
import type { Logger as PinoLogger } from 'pino';
import { AnalyticsModule } from './analytics/analytics.module';
import { AppConfig } from './config/app-config';
import { AppConfigModule } from './config/app-config.module';
import { AuthModule } from './auth/auth.module';
import { ChatModule } from './chat/chat.module';
import { DashboardModule } from './dashboard/dashboard.module';
import { DatabaseModule } from './database/database.module';
import { EmbeddingsModule } from './embeddings/embeddings.module';
import { GatewayModule } from './gateway/gateway.module';
import { HealthModule } from './health/health.module';
import { IdempotencyModule } from './idempotency/idempotency.module';
import { MetricsModule } from './metrics/metrics.module';
import { PluginModule } from './plugin/plugin.module';
import { RedisModule } from './redis/redis.module';
import { SearchModule } from './search/search.module';
import { UsageRepricingModule } from './repricing/usage-repricing.module';
import { TokenTrackingModule } from './token-tracking/token-tracking.module';

@Module({})
export class AppModule {
  static forRoot(config: AppConfig, logger: PinoLogger): DynamicModule {
    return {
      module: AppModule,
      imports: [
        AppConfigModule.forRoot(config),
        // Fastify owns the per-request logger (see app.factory); Nest's own logs go to the same pino instance.
        LoggerModule.forRoot({ pinoHttp: { logger, autoLogging: false }, useExisting: true }),
        DatabaseModule,
        RedisModule,
        AuthModule,
        HealthModule,
        TokenTrackingModule,
        MetricsModule,
        AnalyticsModule,
        IdempotencyModule,
        PluginModule,
        ChatModule,
        EmbeddingsModule,
        SearchModule,
        GatewayModule,
        DashboardModule,
        UsageRepricingModule,
      ],
    };
  }
}
