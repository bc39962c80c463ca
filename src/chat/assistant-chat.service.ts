import { Injectable } from '@nestjs/common';
import { InjectModel } from '@nestjs/mongoose';
import { Model } from 'mongoose';
import { randomBytes } from 'node:crypto';
import type { ChatMessage } from '../ai/ai-provider.interface';
import { AppConfig } from '../config/app-config';
import { AssistantConversation } from './assistant-conversation.schema';
import type { ConversationMessage } from './chat-conversation.schema';
import { AssistantChatDto } from './dto/assistant-chat.dto';
import { AiResponseDto } from './dto/ai-response.dto';
import { OrchaChatService, toSources } from './orcha-chat.service';

const DUPLICATE_KEY = 11000;

/** Seed 001's POST /chat: the assistant of /api/v1/orcha/chat, with conversations kept by conversation_id per user. */
@Injectable()
export class AssistantChatService {
  constructor(
    @InjectModel(AssistantConversation.name) private readonly conversations: Model<AssistantConversation>,
    private readonly assistant: OrchaChatService,
    private readonly config: AppConfig,
  ) {}

  async chat(dto: AssistantChatDto, requestId?: string): Promise<AiResponseDto> {
    const conversationId = dto.conversation_id ?? `conv_${randomBytes(12).toString('hex')}`;
    const history = dto.conversation_id ? await this.history(dto.user_id, conversationId) : [];
    const { answer, context, usage } = await this.assistant.answer(
      { userId: dto.user_id, message: dto.message, useRag: dto.use_rag, history },
      requestId,
    );
    const answeredAt = new Date();
    await this.remember(dto.user_id, conversationId, dto.message, answer.text, answeredAt);
    return {
      stage: 'response',
      conversation_id: conversationId,
      text: answer.text,
      blocks: [],
      intent: null,
      timestamp: answeredAt.toISOString(),
      token_usage: usage,
      model: answer.model,
      provider: answer.provider,
      ...(context ? { sources: toSources(context) } : {}),
    };
  }

  private async history(userId: string, conversationId: string): Promise<ChatMessage[]> {
    const conversation = await this.conversations
      .findOne({ userId, conversationId }, { messages: 1 })
      .lean<Pick<AssistantConversation, 'messages'>>()
      .exec();
    return (conversation?.messages ?? []).map(({ role, content }) => ({ role, content }));
  }

  private async remember(userId: string, conversationId: string, question: string, answer: string, at: Date): Promise<void> {
    const messages: ConversationMessage[] = [
      { role: 'user', content: question, at },
      { role: 'assistant', content: answer, at },
    ];
    const write = () =>
      this.conversations.updateOne(
        { userId, conversationId },
        {
          $push: { messages: { $each: messages, $slice: -this.config.CHAT_HISTORY_LIMIT } },
          $set: { updatedAt: at },
          $setOnInsert: { createdAt: at },
        },
        { upsert: true },
      );
    try {
      await write();
    } catch (error) {
      // Two first turns of one new conversation raced on the unique index: the loser now finds the document.
      if ((error as { code?: number }).code !== DUPLICATE_KEY) throw error;
      await write();
    }
  }
}
