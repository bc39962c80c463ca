import { Module } from '@nestjs/common';
import { AiModule } from '../ai/ai.module';
import { EmbeddingsModule } from '../embeddings/embeddings.module';
import { MetricsModule } from '../metrics/metrics.module';
import { RagService } from './rag.service';
import { SearchCacheMetrics } from './search-cache.metrics';
import { SearchCacheService } from './search-cache.service';
import { SearchController } from './search.controller';
import { SearchService } from './search.service';
import { VectorSearchService } from './vector-search.service';

/** Semantic search and RAG answers over the resources EmbeddingsModule stores. */
@Module({
  imports: [AiModule, EmbeddingsModule, MetricsModule],
  controllers: [SearchController],
  providers: [SearchService, SearchCacheService, SearchCacheMetrics, VectorSearchService, RagService],
  exports: [SearchService, SearchCacheService, RagService],
})
export class SearchModule {}
