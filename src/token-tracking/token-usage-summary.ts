import type { TokenUsageSummaryDto } from './dto/token-usage-summary.dto';
import type { TrackResult } from './usage-record';

/**
 * Folds the ledger results of every provider call one request made into the
 * per-request `tokenUsage` object: totals as the ledger stands after the last
 * call, and the tokens this request used across all of its calls.
 */
export function summariseTracking(results: readonly TrackResult[]): TokenUsageSummaryDto {
  const tokensUsedThisRequest = results.reduce((sum, result) => sum + result.delta.totalTokens, 0);
  const trackingEnabled = results.every((result) => result.trackingEnabled);
  const lastTracked = [...results].reverse().find((result) => result.trackingEnabled);
  if (lastTracked?.trackingEnabled) {
    const { after } = lastTracked;
    return {
      promptTokens: after.promptTokens,
      completionTokens: after.completionTokens,
      totalTokens: after.totalTokens,
      requestCount: after.requestCount,
      tokensUsedThisRequest,
      trackingEnabled,
    };
  }
  // No ledger state could be read: report this request's own figures.
  const sum = (pick: (result: TrackResult) => number) => results.reduce((total, result) => total + pick(result), 0);
  return {
    promptTokens: sum((result) => result.delta.promptTokens),
    completionTokens: sum((result) => result.delta.completionTokens),
    totalTokens: tokensUsedThisRequest,
    requestCount: sum((result) => result.delta.requestCount),
    tokensUsedThisRequest,
    trackingEnabled: false,
  };
}
