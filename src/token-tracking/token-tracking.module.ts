import { Module } from '@nestjs/common';
import { MongooseModule } from '@nestjs/mongoose';
import { AnalyticsModule } from '../analytics/analytics.module';
import { LimitsModule } from '../limits/limits.module';
import { MetricsModule } from '../metrics/metrics.module';
import { TokenTrackingController } from './token-tracking.controller';
import { UsageOutboxReplayer } from './outbox/usage-outbox-replayer.service';
import { UsageOutboxModule } from './outbox/usage-outbox.module';
import { UserPlanController } from './user-plan.controller';
import { UserPlanService } from './user-plan.service';
import { TokenTrackingService } from './token-tracking.service';
import { UserTokenUsage, UserTokenUsageSchema } from './user-token-usage.schema';

@Module({
  imports: [AnalyticsModule, LimitsModule, MetricsModule, UsageOutboxModule, MongooseModule.forFeature([{ name: UserTokenUsage.name, schema: UserTokenUsageSchema }])],
  controllers: [TokenTrackingController, UserPlanController],
  providers: [TokenTrackingService, UsageOutboxReplayer, UserPlanService],
  exports: [TokenTrackingService, LimitsModule],
})
export class TokenTrackingModule {}
