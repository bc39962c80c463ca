import { Inject, Injectable, Logger, Module, OnApplicationBootstrap } from '@nestjs/common';
import { APP_GUARD, ModulesContainer, Reflector } from '@nestjs/core';
import { MongooseModule } from '@nestjs/mongoose';
import { AppConfig } from '../config/app-config';
import { AccessGuard } from './access.guard';
import { ApiKey, ApiKeySchema } from './api-key.schema';
import { ApiKeysController } from './api-keys.controller';
import { ApiKeysService } from './api-keys.service';
import { BOOTSTRAP_ADMIN_KEY, BootstrapAdminKey, NoBootstrapAdminKey, resolveBootstrapAdminKey } from './bootstrap-admin-key';
import { RateLimitService } from './rate-limit.service';
import { listRouteAccess } from './route-access';

/** Start-up warnings: authentication switched off, no admin key, and routes the guard will deny for declaring no access. */
@Injectable()
class AccessAudit implements OnApplicationBootstrap {
  private readonly logger = new Logger('Auth');

  constructor(
    private readonly config: AppConfig,
    private readonly modules: ModulesContainer,
    private readonly reflector: Reflector,
    @Inject(BOOTSTRAP_ADMIN_KEY) private readonly bootstrapKey: BootstrapAdminKey | NoBootstrapAdminKey,
  ) {}

  onApplicationBootstrap(): void {
    if (this.config.AUTH_DISABLED) {
      this.logger.warn('AUTH_DISABLED=true: authentication is OFF and every request acts as admin. Never run this way outside development.');
    } else if ('reason' in this.bootstrapKey) {
      const where = this.bootstrapKey.reason === 'production' ? 'NODE_ENV is production' : 'MONGODB_URI points at an external MongoDB';
      this.logger.warn(
        `ADMIN_API_KEY is not set and ${where}, so no development key is made: only keys stored in api_keys can call ` +
          'protected endpoints. Set ADMIN_API_KEY (at least 16 characters, e.g. `openssl rand -hex 24`) in .env or the ' +
          'environment and restart, then create keys with POST /admin/api-keys.',
      );
    } else if (this.bootstrapKey.source !== 'config') {
      const kept = this.bootstrapKey.file ? `kept in ${this.bootstrapKey.file}` : 'NOT saved (the file could not be written): it lasts for this run only';
      this.logger.log(`Development admin key ${this.bootstrapKey.source === 'created' ? 'made' : 'read back'}, ${kept}`);
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
  providers: [
    { provide: BOOTSTRAP_ADMIN_KEY, inject: [AppConfig], useFactory: resolveBootstrapAdminKey },
    ApiKeysService,
    RateLimitService,
    AccessAudit,
    { provide: APP_GUARD, useClass: AccessGuard },
  ],
  exports: [ApiKeysService, BOOTSTRAP_ADMIN_KEY],
})
export class AuthModule {}
