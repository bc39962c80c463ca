import { Injectable } from '@nestjs/common';
import { Clock } from '../common/clock';
import { AppConfig } from '../config/app-config';
import type { ScoredChunk } from '../embeddings/resource-chunks.service';
import { LruTtlCache } from './lru-ttl-cache';

/** Where a search's query embedding came from; `skipped` when none was needed (cached result, or nothing to search). */
export type QueryEmbeddingSource = 'session' | 'persistent' | 'miss' | 'skipped';
export type ResultCacheOutcome = 'hit' | 'miss' | 'disabled';

/** Whole results are small (limit <= 50 chunks); this bounds them by count. */
const RESULT_CACHE_ENTRIES = 2_000;

export interface CacheLayerCounters {
  lookups: number;
  hits: number;
  /** hits / lookups; 0 before any lookup. */
  hitRate: number;
}

/** In-process counters since start: what metrics and the dashboard read. */
export interface SearchCacheSnapshot {
  since: string;
  searches: number;
  /** Searches that cost no embedding tokens (any cache layer answered). */
  tokenFreeSearches: number;
  hitRate: number;
  session: CacheLayerCounters & { entries: number; enabled: boolean };
  /** Lookups are the searches that reached the persistent cache (no session or result hit). */
  persistent: CacheLayerCounters;
  results: CacheLayerCounters & { entries: number; enabled: boolean };
}

export interface SessionKey {
  userId: string;
  sessionId: string;
  model: string;
  queryHash: string;
}

const rate = (hits: number, lookups: number) => (lookups === 0 ? 0 : hits / lookups);

/**
 * The in-process caches of semantic search, with their hit counters: query embeddings per
 * client session (keyed by user too, so one user's queries never answer another's), and
 * whole results for a short time. The persistent layer is the embedding cache in MongoDB.
 */
@Injectable()
export class SearchCacheService {
  private readonly sessions: LruTtlCache<string, Float32Array>;
  private readonly results: LruTtlCache<string, readonly ScoredChunk[]>;
  private readonly since: Date;
  private readonly counts = { searches: 0, tokenFree: 0, sessionLookups: 0, sessionHits: 0, persistentLookups: 0, persistentHits: 0, resultLookups: 0, resultHits: 0 };

  constructor(
    private readonly config: AppConfig,
    clock: Clock,
  ) {
    const now = () => clock.now();
    this.since = new Date(now());
    this.sessions = new LruTtlCache(config.SEARCH_SESSION_CACHE_SIZE, config.SEARCH_SESSION_CACHE_TTL_MS, now);
    this.results = new LruTtlCache(RESULT_CACHE_ENTRIES, config.SEARCH_RESULT_CACHE_MS, now);
  }

  get sessionCacheEnabled(): boolean {
    return this.config.SEARCH_SESSION_CACHE_SIZE > 0;
  }

  get resultCacheEnabled(): boolean {
    return this.config.SEARCH_RESULT_CACHE_MS > 0;
  }

  sessionVector(key: SessionKey): Float32Array | undefined {
    if (!this.sessionCacheEnabled) return undefined;
    const vector = this.sessions.get(sessionKey(key));
    this.counts.sessionLookups++;
    if (vector) this.counts.sessionHits++;
    return vector;
  }

  /** Kept as float32: half the memory of the provider's doubles, and all the precision embeddings have. */
  rememberSessionVector(key: SessionKey, vector: readonly number[]): void {
    this.sessions.set(sessionKey(key), Float32Array.from(vector));
  }

  /** `key` must name everything the result depends on, the user's chunk version included. */
  cachedResults(key: string): readonly ScoredChunk[] | undefined {
    if (!this.resultCacheEnabled) return undefined;
    const found = this.results.get(key);
    this.counts.resultLookups++;
    if (found) this.counts.resultHits++;
    return found;
  }

  rememberResults(key: string, results: readonly ScoredChunk[]): void {
    this.results.set(key, results);
  }

  recordPersistentLookup(hit: boolean): void {
    this.counts.persistentLookups++;
    if (hit) this.counts.persistentHits++;
  }

  recordSearch(tokenFree: boolean): void {
    this.counts.searches++;
    if (tokenFree) this.counts.tokenFree++;
  }

  snapshot(): SearchCacheSnapshot {
    const c = this.counts;
    return {
      since: this.since.toISOString(),
      searches: c.searches,
      tokenFreeSearches: c.tokenFree,
      hitRate: rate(c.tokenFree, c.searches),
      session: { lookups: c.sessionLookups, hits: c.sessionHits, hitRate: rate(c.sessionHits, c.sessionLookups), entries: this.sessions.size, enabled: this.sessionCacheEnabled },
      persistent: { lookups: c.persistentLookups, hits: c.persistentHits, hitRate: rate(c.persistentHits, c.persistentLookups) },
      results: { lookups: c.resultLookups, hits: c.resultHits, hitRate: rate(c.resultHits, c.resultLookups), entries: this.results.size, enabled: this.resultCacheEnabled },
    };
  }
}

function sessionKey({ userId, sessionId, model, queryHash }: SessionKey): string {
  return `${userId}\u0000${sessionId}\u0000${model}\u0000${queryHash}`;
}
