import { Module } from '@nestjs/common';
import { UsageOutboxModule } from '../token-tracking/outbox/usage-outbox.module';
import { MetricsController } from './metrics.controller';
import { MetricsService } from './metrics.service';
import { MetricsTokenGuard } from './metrics-token.guard';

/** Needs AppConfig, RedisService and the mongoose connection, all global. */
@Module({
  imports: [UsageOutboxModule],
  controllers: [MetricsController],
  providers: [MetricsService, MetricsTokenGuard],
  exports: [MetricsService],
})
export class MetricsModule {}
