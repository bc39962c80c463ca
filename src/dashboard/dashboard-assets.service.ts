import { Injectable, Logger, OnModuleInit, ServiceUnavailableException } from '@nestjs/common';
import { DASHBOARD_PAGE, DashboardAsset, defaultAssetDirs, loadDashboardAssets } from './dashboard-assets';

/** The dashboard's files, read once at start-up. */
@Injectable()
export class DashboardAssetsService implements OnModuleInit {
  private readonly logger = new Logger(DashboardAssetsService.name);
  private assets = new Map<string, DashboardAsset>();
  private failure: string | undefined;

  onModuleInit(): void {
    try {
      this.assets = loadDashboardAssets(defaultAssetDirs());
    } catch (error) {
      // The API keeps working without its dashboard; the page says what is missing.
      this.failure = (error as Error).message;
      this.logger.error(`Usage dashboard unavailable: ${this.failure}`);
    }
  }

  page(): DashboardAsset {
    return this.get(DASHBOARD_PAGE)!;
  }

  /** undefined for a name that is not one of the dashboard's files. */
  get(name: string): DashboardAsset | undefined {
    if (this.failure) throw new ServiceUnavailableException(`The usage dashboard is not available: ${this.failure}`);
    return this.assets.get(name);
  }
}
