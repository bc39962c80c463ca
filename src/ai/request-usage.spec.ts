import { currentRequestUsage, RequestUsage, requestUsageFor, runWithRequestUsage } from './request-usage';

const part = (prompt: number, completion: number, costMicros = 10) => ({
  promptTokens: prompt,
  completionTokens: completion,
  embeddingTokens: 0,
  totalTokens: prompt + completion,
  costMicros,
  estimated: false,
});

describe(RequestUsage.name, () => {
  it('adds token_usage to AI failure statuses once a call was attempted, tokenUsage when a user was tracked', () => {
    const usage = new RequestUsage();
    expect(usage.failureFields(502)).toEqual({});
    usage.beginAi();
    expect(usage.failureFields(503)).toMatchObject({ token_usage: { total_tokens: 0 } });
    expect(usage.failureFields(429)).toEqual({});
    usage.attempted(undefined);
    usage.billed(part(10, 5));
    usage.billed(part(3, 0));
    expect(usage.failureFields(502)).toEqual({
      token_usage: { prompt_tokens: 13, completion_tokens: 5, total_tokens: 18, embedding_tokens: 0, cost_estimate_usd: 0.00002, estimated: false },
    });
    expect(usage.failureFields(400)).toEqual({});
    usage.attempted('alice');
    expect(Object.keys(usage.failureFields(429))).toEqual(['token_usage', 'tokenUsage']);
    expect(usage.failureFields(504)).toMatchObject({ tokenUsage: { tokensUsedThisRequest: 0 } });
  });

  it('is the current usage inside the request it was made for, and findable by that request', async () => {
    const request = {};
    expect(currentRequestUsage()).toBeUndefined();
    const inside = await runWithRequestUsage(request, async () => {
      await new Promise((resolve) => setImmediate(resolve));
      return currentRequestUsage();
    });
    expect(inside).toBeInstanceOf(RequestUsage);
    expect(requestUsageFor(request)).toBe(inside);
    expect(requestUsageFor({})).toBeUndefined();
  });
});
