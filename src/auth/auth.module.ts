import { Injectable, Logger, Module, OnApplicationBootstrap } from '@nestjs/common';
import { APP_GUARD, ModulesContainer, Reflector } from '@nestjs/core';
import { MongooseModule } from '@nestjs/mongoose';
import { AppConfig } from '../config/app-config';
import { AccessGuard } from './access.guard';
import { ApiKey, ApiKeySchema } from './api-key.schema';
import { ApiKeysController } from './api-keys.controller';
import { ApiKeysService } from './api-keys.service';
import { RateLimitService } from './rate-limit.service';
import { listRouteAccess } from './route-access';

/** Start-up warnings: authentication switched off, and routes the guard will deny for declaring no access. */
@Injectable()
class AccessAudit implements OnApplicationBootstrap {
  private readonly logger = new Logger('Auth');

  constructor(
    private readonly config: AppConfig,
    private readonly modules: ModulesContainer,
    private readonly reflector: Reflector,
  ) {}

  onApplicationBootstrap(): void {
    if (this.config.AUTH_DISABLED) {
      this.logger.warn('AUTH_DISABLED=true: authentication is OFF and every request acts as admin. Never run this way outside development.');
    } else if (!this.config.ADMIN_API_KEY) {
      this.logger.log('ADMIN_API_KEY is not set: only keys already stored in api_keys can call protected endpoints');
    }
    const undeclared = listRouteAccess(this.modules, this.reflector).filter((route) => !route.access);
    for (const route of undeclared) {
      this.logger.error(`${route.method} ${route.path} (${route.handler}) declares no @Access(...) and will answer 403`);
    }
  }
}

@Module({
  imports: [MongooseModule.forFeature([{ name: ApiKey.name, schema: ApiKeySchema }])],
  controllers: [ApiKeysController],
  providers: [ApiKeysService, RateLimitService, AccessAudit, { provide: APP_GUARD, useClass: AccessGuard }],
  exports: [ApiKeysService],
})
export class AuthModule {}
