import { Injectable } from '@nestjs/common';
import { AiCompletion, AiService } from '../ai/ai.service';
import type { ChatMessage } from '../ai/ai-provider.interface';
import { RequestTokenUsageDto, toRequestTokenUsage } from '../ai/dto/request-token-usage.dto';
import type { RagSourceDto } from '../search/dto/search-responses.dto';
import { RagContext, RagPlan, RagService } from '../search/rag.service';
import { OrchaChatDto } from './dto/orcha-chat.dto';
import { OrchaChatResponseDto } from './dto/orcha-chat-response.dto';

export const ASSISTANT_INSTRUCTIONS = 'You are a helpful assistant. Answer clearly and concisely.';
/** Passages retrieved for a use_rag message. */
export const RAG_CHAT_PASSAGES = 5;

@Injectable()
export class OrchaChatService {
  constructor(
    private readonly ai: AiService,
    private readonly rag: RagService,
  ) {}

  /**
   * With use_rag the message first retrieves passages from the user's resources (an
   * `embedding` operation unless cached) and the answer is grounded on them; with none
   * relevant the model still answers, told the resources did not cover it.
   */
  async chat(dto: OrchaChatDto, requestId?: string): Promise<OrchaChatResponseDto> {
    const { answer, context, usage } = await this.answer({ userId: dto.user_id, message: dto.message, useRag: dto.use_rag }, requestId);
    const window = answer.tracked.at(-1)?.window;
    return {
      status: 'ok',
      message: answer.text,
      model: answer.model,
      provider: answer.provider,
      ...(context ? { sources: toSources(context) } : {}),
      token_usage: {
        current_usage: window?.currentUsage ?? 0,
        tokens_added: usage.total_tokens,
        reset_at: window?.resetAt?.toISOString() ?? null,
        tracking_enabled: window?.trackingEnabled ?? false,
        ...usage,
      },
    };
  }

  /** One assistant answer (after the earlier turns in history, if any), tracked as `orcha_chat` for the user. */
  /**
   * With use_rag, the search embedding and the answer are reserved together before either is
   * made (see RagService.reserve): at the edge of a limit the message is refused whole.
   */
  async answer(input: AssistantInput, requestId?: string): Promise<AssistantAnswer> {
    const messages = (grounding: ChatMessage[]): ChatMessage[] => [
      { role: 'system', content: ASSISTANT_INSTRUCTIONS },
      ...(input.history ?? []),
      ...grounding,
      { role: 'user', content: input.message },
    ];
    if (!input.useRag) {
      const answer = await this.ai.complete({ messages: messages([]) }, { userId: input.userId, requestId, operationType: 'orcha_chat' });
      return { answer, usage: toRequestTokenUsage([answer.spent]) };
    }
    const plan: RagPlan = { operation: 'orcha_chat', baseMessages: messages([this.rag.groundingMessage([])]) };
    const budget = await this.rag.reserve(input.userId, input.message, plan);
    try {
      const context = await this.rag.retrieve({ query: input.message, userId: input.userId, limit: RAG_CHAT_PASSAGES }, requestId, { ...plan, budget });
      const answer = await this.ai.complete({ messages: messages([this.rag.groundingMessage(context.passages)]) }, { userId: input.userId, requestId, operationType: 'orcha_chat', budget });
      return { answer, context, usage: toRequestTokenUsage([...context.search.spent, answer.spent]) };
    } finally {
      await this.ai.releaseRequest(budget);
    }
  }
}

export interface AssistantInput {
  userId: string;
  message: string;
  useRag?: boolean;
  /** Earlier turns of the conversation, oldest first. */
  history?: ChatMessage[];
}

export interface AssistantAnswer {
  answer: AiCompletion;
  context?: RagContext;
  /** Every provider call of the request (with use_rag: the search embedding and the answer). */
  usage: RequestTokenUsageDto;
}

export function toSources(context: RagContext): RagSourceDto[] {
  return context.passages.map((passage) => ({ resource_id: passage.resourceId, chunk_index: passage.chunkIndex, score: passage.score }));
}
