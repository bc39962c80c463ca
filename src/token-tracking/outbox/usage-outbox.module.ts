import { Injectable, Module, OnApplicationShutdown } from '@nestjs/common';
import { AppConfig } from '../../config/app-config';
import { UsageOutbox } from './usage-outbox';

@Injectable()
class UsageOutboxLifecycle implements OnApplicationShutdown {
  constructor(private readonly outbox: UsageOutbox) {}

  /** Pending appends are flushed; whatever was not replayed stays on disk for the next start. */
  onApplicationShutdown(): Promise<void> {
    return this.outbox.close();
  }
}

/** The durable outbox of failed ledger writes (see UsageOutbox); its size is readable by health and metrics. */
@Module({
  providers: [{ provide: UsageOutbox, inject: [AppConfig], useFactory: (config: AppConfig) => UsageOutbox.open(config.OUTBOX_DIR) }, UsageOutboxLifecycle],
  exports: [UsageOutbox],
})
export class UsageOutboxModule {}
