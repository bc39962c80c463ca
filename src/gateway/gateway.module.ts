import { Module } from '@nestjs/common';
import { APP_INTERCEPTOR } from '@nestjs/core';
import { AiModule } from '../ai/ai.module';
import { SlicedJsonInterceptor } from '../common/sliced-json.interceptor';
import { EmbeddingsModule } from '../embeddings/embeddings.module';
import { GatewayController } from './gateway.controller';
import { GatewayService } from './gateway.service';

@Module({
  imports: [AiModule, EmbeddingsModule],
  controllers: [GatewayController],
  providers: [GatewayService, { provide: APP_INTERCEPTOR, useClass: SlicedJsonInterceptor }],
})
export class GatewayModule {}
