import { Injectable, OnModuleInit } from '@nestjs/common';
import { Gauge } from 'prom-client';
import { METRIC_PREFIX, MetricsService } from '../metrics/metrics.service';
import { SearchCacheService } from './search-cache.service';

/**
 * Search cache statistics on the Prometheus registry, read at scrape time. Registered from
 * the search side so the metrics module needs no import of search (no module cycle).
 */
@Injectable()
export class SearchCacheMetrics implements OnModuleInit {
  constructor(
    private readonly metrics: MetricsService,
    private readonly cache: SearchCacheService,
  ) {}

  onModuleInit(): void {
    const cache = this.cache;
    new Gauge({
      name: `${METRIC_PREFIX}search_cache_hit_ratio`,
      help: 'Search cache hit ratio since start, per layer (overall = searches answered without embedding tokens)',
      labelNames: ['layer'],
      registers: [this.metrics.registry],
      collect() {
        const snapshot = cache.snapshot();
        this.set({ layer: 'overall' }, snapshot.hitRate);
        this.set({ layer: 'session' }, snapshot.session.hitRate);
        this.set({ layer: 'persistent' }, snapshot.persistent.hitRate);
        this.set({ layer: 'results' }, snapshot.results.hitRate);
      },
    });
    new Gauge({
      name: `${METRIC_PREFIX}search_cache_entries`,
      help: 'Entries held by the in-process search caches',
      labelNames: ['layer'],
      registers: [this.metrics.registry],
      collect() {
        const snapshot = cache.snapshot();
        this.set({ layer: 'session' }, snapshot.session.entries);
        this.set({ layer: 'results' }, snapshot.results.entries);
      },
    });
  }
}
