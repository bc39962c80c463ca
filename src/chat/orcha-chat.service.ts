import { Injectable } from '@nestjs/common';
import { AiService } from '../ai/ai.service';
import type { ChatMessage } from '../ai/ai-provider.interface';
import { toRequestTokenUsage } from '../ai/dto/request-token-usage.dto';
import { RagContext, RagService } from '../search/rag.service';
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
    const context: RagContext | undefined = dto.use_rag
      ? await this.rag.retrieve({ query: dto.message, userId: dto.user_id, limit: RAG_CHAT_PASSAGES }, requestId)
      : undefined;
    const messages: ChatMessage[] = [
      { role: 'system', content: ASSISTANT_INSTRUCTIONS },
      ...(context ? [this.rag.groundingMessage(context)] : []),
      { role: 'user', content: dto.message },
    ];
    const answer = await this.ai.complete({ messages }, { userId: dto.user_id, requestId, operationType: 'orcha_chat' });
    const usage = toRequestTokenUsage([...(context?.search.spent ?? []), answer.spent]);
    const window = answer.tracked.at(-1)?.window;
    return {
      status: 'ok',
      message: answer.text,
      model: answer.model,
      provider: answer.provider,
      ...(context
        ? { sources: context.passages.map((passage) => ({ resource_id: passage.resourceId, chunk_index: passage.chunkIndex, score: passage.score })) }
        : {}),
      token_usage: {
        current_usage: window?.currentUsage ?? 0,
        tokens_added: usage.total_tokens,
        reset_at: window?.resetAt?.toISOString() ?? null,
        tracking_enabled: window?.trackingEnabled ?? false,
        ...usage,
      },
    };
  }
}
