import { Global, Module } from '@nestjs/common';
import { Clock } from '../common/clock';
import { UsageHeadersInterceptor } from './usage-headers.interceptor';
import { UsageLimitsService } from './usage-limits.service';
import { UsageWindowController } from './usage-window.controller';

/** Global: AI endpoints anywhere use its interceptor, and the clock is shared. */
@Global()
@Module({
  controllers: [UsageWindowController],
  providers: [Clock, UsageLimitsService, UsageHeadersInterceptor],
  exports: [Clock, UsageLimitsService, UsageHeadersInterceptor],
})
export class LimitsModule {}
