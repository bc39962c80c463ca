import { Module } from '@nestjs/common';
import { MongooseModule } from '@nestjs/mongoose';
import { AlertsModule } from '../alerts/alerts.module';
import { LimitsModule } from '../limits/limits.module';
import { MetricsModule } from '../metrics/metrics.module';
import { SearchTokenUsageController } from './search-token-usage.controller';
import { UsageAnalyticsService } from './usage-analytics.service';
import { UsageEvent, UsageEventSchema } from './usage-event.schema';
import { UsageEventWriter } from './usage-event.writer';
import { UsageEventsController } from './usage-events.controller';
import { UsageEventsService } from './usage-events.service';
import { UsageLogWriter } from './usage-log.writer';
import { UsageRollup, UsageRollupSchema, UserUsageRollup, UserUsageRollupSchema } from './usage-rollup.schema';
import { UsageStatsController } from './usage-stats.controller';

/** Usage events, their daily/monthly aggregates, the JSONL usage log and the analytics APIs. */
@Module({
  imports: [
    LimitsModule,
    MetricsModule,
    AlertsModule,
    MongooseModule.forFeature([
      { name: UsageEvent.name, schema: UsageEventSchema },
      { name: UsageRollup.name, schema: UsageRollupSchema },
      { name: UserUsageRollup.name, schema: UserUsageRollupSchema },
    ]),
  ],
  controllers: [SearchTokenUsageController, UsageStatsController, UsageEventsController],
  providers: [UsageEventsService, UsageEventWriter, UsageAnalyticsService, UsageLogWriter],
  exports: [UsageEventsService],
})
export class AnalyticsModule {}
