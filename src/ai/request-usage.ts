import { AsyncLocalStorage } from 'node:async_hooks';
import { summariseTracking } from '../token-tracking/token-usage-summary';
import type { TrackResult } from '../token-tracking/usage-record';
import type { SpentUsage } from './ai.service';
import { toRequestTokenUsage } from './dto/request-token-usage.dto';

/** Statuses an AI endpoint fails with after provider calls; their bodies say what those calls cost. */
const AI_FAILURE_STATUSES = new Set([502, 503, 504]);
const TOO_MANY_REQUESTS = 429;

/**
 * Every provider call one HTTP request made, across features and services, so that a failure
 * response can still say what the request cost (the success paths sum their own calls).
 */
export class RequestUsage {
  private began = false;
  private calls = 0;
  private forUser = false;
  private readonly spent: SpentUsage[] = [];
  private readonly tracked: TrackResult[] = [];

  /** The request asked AiService for something: its 502/503/504 are AI failures, even before any call. */
  beginAi(): void {
    this.began = true;
  }

  /** A provider call is about to be made (its reservation, if any, was granted). */
  attempted(userId: string | undefined): void {
    this.began = true;
    this.calls++;
    if (userId) this.forUser = true;
  }

  billed(part: SpentUsage, tracked?: TrackResult): void {
    this.spent.push(part);
    if (tracked) this.tracked.push(tracked);
  }

  /**
   * `token_usage` (and `tokenUsage` when a user is tracked) for a failure body: on 502/503/504 of a
   * request that used AI (zeros when no call was made), on 429 once a provider call was made.
   */
  failureFields(status: number): Record<string, unknown> {
    const reported = AI_FAILURE_STATUSES.has(status) ? this.began || this.calls > 0 : status === TOO_MANY_REQUESTS && this.calls > 0;
    if (!reported) return {};
    return {
      token_usage: toRequestTokenUsage(this.spent),
      ...(this.forUser ? { tokenUsage: summariseTracking(this.tracked) } : {}),
    };
  }
}

const current = new AsyncLocalStorage<RequestUsage>();
const byRequest = new WeakMap<object, RequestUsage>();

/** The usage of the HTTP request being served, when there is one. */
export function currentRequestUsage(): RequestUsage | undefined {
  return current.getStore();
}

export function runWithRequestUsage<T>(request: object, run: () => T): T {
  const usage = new RequestUsage();
  byRequest.set(request, usage);
  return current.run(usage, run);
}

export function requestUsageFor(request: object | undefined): RequestUsage | undefined {
  return request ? byRequest.get(request) : undefined;
}
