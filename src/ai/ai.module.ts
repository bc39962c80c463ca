import { Module } from '@nestjs/common';
import { APP_INTERCEPTOR } from '@nestjs/core';
import { TokenTrackingModule } from '../token-tracking/token-tracking.module';
import { aiProviderFactory } from './ai-provider.factory';
import { AiService } from './ai.service';
import { PricingService } from './pricing.service';
import { RequestUsageInterceptor } from './request-usage.interceptor';
import { TokenizerService } from './tokenizer.service';

/** Needs AppConfig from the global AppConfigModule. */
@Module({
  imports: [TokenTrackingModule],
  providers: [TokenizerService, PricingService, aiProviderFactory, AiService, { provide: APP_INTERCEPTOR, useClass: RequestUsageInterceptor }],
  exports: [AiService, TokenizerService, PricingService],
})
export class AiModule {}
