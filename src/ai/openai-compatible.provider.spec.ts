import { usageFromOpenAi } from './openai-compatible.provider';

describe(usageFromOpenAi.name, () => {
  it('reads OpenAI usage with cached and reasoning details', () => {
    expect(
      usageFromOpenAi({
        prompt_tokens: 1_200,
        completion_tokens: 300,
        total_tokens: 1_500,
        prompt_tokens_details: { cached_tokens: 1_024, audio_tokens: 0 },
        completion_tokens_details: { reasoning_tokens: 192 },
      }),
    ).toEqual({ promptTokens: 1_200, completionTokens: 300, totalTokens: 1_500, cachedTokens: 1_024, reasoningTokens: 192 });
  });

  it("reads OpenRouter's cost and cache writes (Anthropic and Gemini prompt caching)", () => {
    expect(
      usageFromOpenAi({
        prompt_tokens: 5_000,
        completion_tokens: 100,
        total_tokens: 5_100,
        cost: 0.016_275,
        prompt_tokens_details: { cached_tokens: 0, cache_write_tokens: 4_800 },
      }),
    ).toEqual({ promptTokens: 5_000, completionTokens: 100, totalTokens: 5_100, cachedTokens: 0, cacheWriteTokens: 4_800, costUsd: 0.016_275 });
  });

  it("reads Anthropic's cache_creation_input_tokens as passed through by OpenAI-compatible proxies", () => {
    expect(usageFromOpenAi({ prompt_tokens: 2_000, completion_tokens: 10, cache_creation_input_tokens: 1_500 })).toMatchObject({ cacheWriteTokens: 1_500 });
  });

  it('ignores usage without both counts', () => {
    expect(usageFromOpenAi({ prompt_tokens: 5 })).toBeNull();
    expect(usageFromOpenAi(null)).toBeNull();
  });
});
