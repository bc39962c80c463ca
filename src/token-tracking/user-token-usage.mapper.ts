import { microsToUsd } from '../common/money';
import { UsageBucketDto, UserTokenUsageResponseDto } from './dto/user-token-usage-response.dto';
import { UsageBucket, UserTokenUsage } from './user-token-usage.schema';

function toBucketDtos(buckets: Record<string, UsageBucket> | undefined, keyName: 'date' | 'month'): UsageBucketDto[] {
  return Object.entries(buckets ?? {})
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([key, bucket]) => ({
      [keyName]: key,
      promptTokens: bucket.promptTokens ?? 0,
      completionTokens: bucket.completionTokens ?? 0,
      embeddingTokens: bucket.embeddingTokens ?? 0,
      totalTokens: bucket.totalTokens ?? 0,
      costUsd: microsToUsd(bucket.costMicros ?? 0),
      requestCount: bucket.requestCount ?? 0,
      operations: bucket.operations ?? {},
    }));
}

export function toUserTokenUsageResponse(document: UserTokenUsage): UserTokenUsageResponseDto {
  return {
    userId: document.userId,
    totalTokens: document.totalTokens ?? 0,
    promptTokens: document.totalPromptTokens ?? 0,
    completionTokens: document.totalCompletionTokens ?? 0,
    embeddingTokens: document.totalEmbeddingTokens ?? 0,
    requestCount: document.requestCount ?? 0,
    costUsd: microsToUsd(document.totalCostMicros ?? 0),
    dailyUsage: toBucketDtos(document.dailyUsage, 'date'),
    monthlyUsage: toBucketDtos(document.monthlyUsage, 'month'),
    firstRequestAt: document.firstRequestAt?.toISOString() ?? null,
    lastRequestAt: document.lastRequestAt?.toISOString() ?? null,
    recentSessions: (document.recentSessions ?? [])
      .slice()
      .reverse()
      .map((session) => ({
        operationType: session.operationType,
        model: session.model,
        provider: session.provider,
        promptTokens: session.promptTokens,
        completionTokens: session.completionTokens,
        embeddingTokens: session.embeddingTokens,
        totalTokens: session.totalTokens,
        costUsd: microsToUsd(session.costMicros),
        costSource: session.costSource,
        ...(session.priceVersion ? { priceVersion: session.priceVersion } : {}),
        ...(session.priceEntry ? { priceEntry: session.priceEntry } : {}),
        estimated: session.estimated,
        latencyMs: session.latencyMs,
        success: session.success,
        ...(session.errorMessage ? { errorMessage: session.errorMessage } : {}),
        ...(session.requestId ? { requestId: session.requestId } : {}),
        timestamp: new Date(session.timestamp).toISOString(),
      })),
  };
}
