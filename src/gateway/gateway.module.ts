import { Module } from '@nestjs/common';
import { AiModule } from '../ai/ai.module';
import { EmbeddingsModule } from '../embeddings/embeddings.module';
import { GatewayController } from './gateway.controller';
import { GatewayService } from './gateway.service';

@Module({
  imports: [AiModule, EmbeddingsModule],
  controllers: [GatewayController],
  providers: [GatewayService],
})
export class GatewayModule {}
