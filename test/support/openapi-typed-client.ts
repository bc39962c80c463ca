/**
 * A client written only from the published OpenAPI document: openapi-typescript generates
 * `./openapi-schema` from /docs-json next to a copy of this file, which must then type-check
 * (test/openapi-contract.e2e-spec.ts). Excluded from tsconfig.json, since the schema exists
 * only in that test's temporary directory.
 */
import createClient from 'openapi-fetch';
import type { components, paths } from './openapi-schema';

type ErrorBody = components['schemas']['ErrorResponseDto'];

/** What a caller can tell a user from any error answer. */
function describeError(status: number, error: ErrorBody): string {
  return `${status} ${error.error}: ${error.message} (request ${error.requestId})`;
}

export function createSeedClient(baseUrl: string, apiKey: string) {
  // A JSON client: the endpoints that can also stream or answer text do so only when asked.
  const client = createClient<paths, 'application/json'>({ baseUrl, headers: { authorization: `Bearer ${apiKey}` } });

  return {
    async generatePlugin(userId: string, prompt: string) {
      const { data, error, response } = await client.POST('/plugin/generate', { body: { userId, prompt, autoCompile: false } });
      if (error) {
        if (response.status === 429 && 'resetsAt' in error) return { retryAt: new Date(error.resetsAt), limit: error.limit, used: error.used, max: error.max };
        const spent = 'token_usage' in error ? error.token_usage : undefined;
        if (response.status >= 502 && spent) {
          return { failedAfterTokens: spent.total_tokens, billedUsd: spent.cost_estimate_usd, ledger: 'tokenUsage' in error ? error.tokenUsage?.totalTokens : undefined };
        }
        throw new Error(describeError(response.status, error));
      }
      const remaining: string | null = response.headers.get('x-ratelimit-remaining-tokens');
      return {
        files: data.pluginProject.files.map((file) => file.path),
        thisRequest: data.tokenUsage?.tokensUsedThisRequest,
        allTime: data.tokenUsage?.totalTokens,
        costUsd: data.token_usage.cost_estimate_usd,
        remaining,
      };
    },

    async chatMessage(username: string, message: string) {
      const { data, error, response } = await client.POST('/chat/message', { body: { username, message }, headers: { 'Idempotency-Key': `chat-${username}-1` } });
      if (error) {
        if (response.status === 400 && 'fields' in error) throw new Error(error.fields?.map((field) => `${field.field}: ${field.errors.join(', ')}`).join('; '));
        throw new Error(describeError(response.status, error));
      }
      const intent: 'info' | 'modification' | string = data.type;
      return { intent, answer: data.message, thisRequest: data.tokenUsage.tokensUsedThisRequest, trackingEnabled: data.tokenUsage.trackingEnabled };
    },

    async orchaChat(userId: string, message: string) {
      const { data, error, response } = await client.POST('/api/v1/orcha/chat', { body: { user_id: userId, message } });
      if (error) throw new Error(describeError(response.status, error));
      return { answer: data.message, windowUsage: data.token_usage.current_usage, added: data.token_usage.tokens_added, resetAt: data.token_usage.reset_at };
    },

    async rollingWindow(userId: string) {
      const { data, error, response } = await client.GET('/api/v1/tokens/usage/{userId}', { params: { path: { userId } } });
      if (error) throw new Error(describeError(response.status, error));
      return { used: data.current_usage, resetAt: data.reset_at === null ? null : new Date(data.reset_at), left: data.remaining?.rolling24hTokens ?? null, tier: data.tier };
    },

    async ledger(userId: string) {
      const { data, error, response } = await client.GET('/user/{userId}/token-usage', { params: { path: { userId } } });
      if (error) {
        if (response.status === 404) return null;
        throw new Error(describeError(response.status, error));
      }
      return { total: data.totalTokens, prompt: data.promptTokens, completion: data.completionTokens, embedding: data.embeddingTokens, costUsd: data.costUsd, requests: data.requestCount };
    },

    async monthOverview() {
      const { data, error, response } = await client.GET('/api/usage', { params: { query: { period: 'month' } } });
      if (error) throw new Error(describeError(response.status, error));
      return { tokens: data.summary.totalTokens, activeUsers: data.summary.activeUsers, topUsers: data.topUsers.length };
    },

    async metrics() {
      const { data, error, response } = await client.GET('/metrics', { headers: { accept: 'application/json' } });
      if (error) throw new Error(describeError(response.status, error));
      return { requests: data.requests_total, errors: data.errors_total, promptTokens: data.token_usage.total_prompt_tokens, costUsd: data.token_usage.total_cost_usd };
    },

    async openAiCompletion(user: string, content: string) {
      const { data, error, response } = await client.POST('/v1/chat/completions', { body: { model: 'openai/gpt-4o-mini', user, messages: [{ role: 'user', content }] } });
      if (error) throw new Error(describeError(response.status, error));
      return { text: data.choices[0]?.message.content, usage: data.usage.total_tokens, billedUsd: response.headers.get('x-token-ledger-cost-usd') };
    },

    async openAiEmbeddings(user: string, input: string[]) {
      const { data, error, response } = await client.POST('/v1/embeddings', { body: { model: 'text-embedding-3-small', user, input } });
      if (error) throw new Error(describeError(response.status, error));
      return { vectors: data.data.length, tokens: data.usage.total_tokens };
    },

    async models() {
      const { data, error, response } = await client.GET('/v1/models');
      if (error) throw new Error(describeError(response.status, error));
      return data.data.map((model) => model.id);
    },
  };
}
