import { Module } from '@nestjs/common';
import { MongooseModule } from '@nestjs/mongoose';
import { LimitsModule } from '../limits/limits.module';
import { MetricsModule } from '../metrics/metrics.module';
import { AlertWebhookSender } from './alert-webhook.sender';
import { AlertsService } from './alerts.service';
import { BudgetAlert, BudgetAlertSchema } from './budget-alert.schema';

@Module({
  imports: [LimitsModule, MetricsModule, MongooseModule.forFeature([{ name: BudgetAlert.name, schema: BudgetAlertSchema }])],
  providers: [AlertsService, AlertWebhookSender],
  exports: [AlertsService],
})
export class AlertsModule {}
