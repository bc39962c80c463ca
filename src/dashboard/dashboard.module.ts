import { Module } from '@nestjs/common';
import { DashboardAssetsService } from './dashboard-assets.service';
import { DashboardController } from './dashboard.controller';

/** The web usage dashboard at /usage and /token-usage (its data comes from the analytics, ledger and limits APIs). */
@Module({ controllers: [DashboardController], providers: [DashboardAssetsService] })
export class DashboardModule {}
