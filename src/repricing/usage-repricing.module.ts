import { Module } from '@nestjs/common';
import { AiModule } from '../ai/ai.module';
import { AnalyticsModule } from '../analytics/analytics.module';
import { TokenTrackingModule } from '../token-tracking/token-tracking.module';
import { UsageRepricingController } from './usage-repricing.controller';
import { UsageRepricingService } from './usage-repricing.service';

/** Re-pricing after a price list fix: needs the price lists (ai), the events (analytics) and the ledger (token-tracking). */
@Module({
  imports: [AiModule, AnalyticsModule, TokenTrackingModule],
  controllers: [UsageRepricingController],
  providers: [UsageRepricingService],
})
export class UsageRepricingModule {}
