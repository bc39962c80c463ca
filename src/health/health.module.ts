import { Module } from '@nestjs/common';
import { UsageOutboxModule } from '../token-tracking/outbox/usage-outbox.module';
import { HealthController } from './health.controller';
import { HealthService } from './health.service';

@Module({ imports: [UsageOutboxModule], controllers: [HealthController], providers: [HealthService] })
export class HealthModule {}
