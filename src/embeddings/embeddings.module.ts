import { Module } from '@nestjs/common';
import { MongooseModule } from '@nestjs/mongoose';
import { AiModule } from '../ai/ai.module';
import {
  EmbeddingCacheEntry,
  EmbeddingCacheEntrySchema,
  EmbeddingCacheStats,
  EmbeddingCacheStatsSchema,
} from './embedding-cache.schema';
import { EmbeddingsController } from './embeddings.controller';
import { EmbeddingsService } from './embeddings.service';
import { ResourceChunk, ResourceChunkSchema, ResourceChunkVersion, ResourceChunkVersionSchema } from './resource-chunk.schema';
import { ResourceChunksService } from './resource-chunks.service';

@Module({
  imports: [
    AiModule,
    MongooseModule.forFeature([
      { name: EmbeddingCacheEntry.name, schema: EmbeddingCacheEntrySchema },
      { name: EmbeddingCacheStats.name, schema: EmbeddingCacheStatsSchema },
      { name: ResourceChunk.name, schema: ResourceChunkSchema },
      { name: ResourceChunkVersion.name, schema: ResourceChunkVersionSchema },
    ]),
  ],
  controllers: [EmbeddingsController],
  providers: [EmbeddingsService, ResourceChunksService],
  exports: [EmbeddingsService, ResourceChunksService],
})
export class EmbeddingsModule {}
