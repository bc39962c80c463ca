import { Injectable, Logger } from '@nestjs/common';
import { InjectModel } from '@nestjs/mongoose';
import { Model } from 'mongoose';
import { AiService } from '../ai/ai.service';
import { toRequestTokenUsage } from '../ai/dto/request-token-usage.dto';
import type { ChatMessage } from '../ai/ai-provider.interface';
import { withinDeadline } from '../common/deadline';
import { AppConfig } from '../config/app-config';
import { summariseTracking } from '../token-tracking/token-usage-summary';
import { ChatConversation, ConversationMessage } from './chat-conversation.schema';
import { ChatIntent, INTENT_INSTRUCTIONS, INTENT_SCHEMA, parseIntent, simulatedIntent } from './chat-intent';
import { ChatMessageDto } from './dto/chat-message.dto';
import { ChatMessageResponseDto } from './dto/chat-message-response.dto';

const ANSWER_INSTRUCTIONS: Record<ChatIntent, string> = {
  info: 'You help people who write Bukkit/Spigot Minecraft plugins in Java. Answer the question clearly and concisely, with short code examples where they help.',
  modification:
    'You help people change their Bukkit/Spigot Minecraft plugin in Java. Explain the change they asked for and show the code to add or replace, file by file.',
};

@Injectable()
export class ChatService {
  private readonly logger = new Logger(ChatService.name);

  constructor(
    @InjectModel(ChatConversation.name) private readonly conversations: Model<ChatConversation>,
    private readonly ai: AiService,
    private readonly config: AppConfig,
  ) {}

  /**
   * Intent analysis, then an info or modification answer: two tracked calls, reserved
   * together before the first, so the message is answered whole or refused unbilled.
   */
  async handleMessage(dto: ChatMessageDto, requestId?: string): Promise<ChatMessageResponseDto> {
    const pluginName = dto.pluginName ?? '';
    const history = await this.history(dto.username, pluginName);
    const intentRequest = {
      messages: [
        { role: 'system' as const, content: INTENT_INSTRUCTIONS },
        { role: 'user' as const, content: dto.message },
      ],
      responseFormat: 'json_object' as const,
      jsonSchema: INTENT_SCHEMA,
      maxTokens: 20,
      simulatedAnswer: JSON.stringify({ type: simulatedIntent(dto.message) }),
    };
    const answerRequest = (type: ChatIntent): { messages: ChatMessage[] } => {
      const system = pluginName ? `${ANSWER_INSTRUCTIONS[type]}\nThe plugin is called ${pluginName}.` : ANSWER_INSTRUCTIONS[type];
      return { messages: [{ role: 'system', content: system }, ...history, { role: 'user', content: dto.message }] };
    };
    const longest = ANSWER_INSTRUCTIONS.info.length >= ANSWER_INSTRUCTIONS.modification.length ? 'info' : 'modification';
    const budget = await this.ai.reserveRequest(dto.username, [
      { operations: ['chat_intent'], request: intentRequest },
      { operations: ['chat_info', 'chat_modification'], request: answerRequest(longest) },
    ]);
    try {
      // Whatever the intent model says (prose, empty, a refusal) maps to an intent: see parseIntent.
      const intentCall = await this.ai.complete(intentRequest, { userId: dto.username, requestId, operationType: 'chat_intent', anyAnswer: true, budget });
      const type = parseIntent(intentCall.text);
      const answer = await this.ai.complete(answerRequest(type), {
        userId: dto.username,
        requestId,
        operationType: type === 'info' ? 'chat_info' : 'chat_modification',
        budget,
      });
      await this.remember(dto.username, pluginName, dto.message, answer.text);
      return {
        success: true,
        type,
        message: answer.text,
        username: dto.username,
        pluginName: dto.pluginName ?? null,
        model: answer.model,
        provider: answer.provider,
        tokenUsage: summariseTracking([...intentCall.tracked, ...answer.tracked]),
        token_usage: toRequestTokenUsage([intentCall.spent, answer.spent]),
      };
    } finally {
      await this.ai.releaseRequest(budget);
    }
  }

  /** MongoDB down or frozen: the message is answered without history (documented fallback). */
  private async history(username: string, pluginName: string): Promise<ChatMessage[]> {
    try {
      const conversation = await withinDeadline(this.conversations.db, this.config.MONGODB_READ_TIMEOUT_MS, 'chat history read', () =>
        this.conversations.findOne({ username, pluginName }, { messages: 1 }).lean<Pick<ChatConversation, 'messages'>>().exec(),
      );
      return (conversation?.messages ?? []).map(({ role, content }) => ({ role, content }));
    } catch (error) {
      this.logger.warn(`Chat history of ${username} not read (${(error as Error).message}); answering without it`);
      return [];
    }
  }

  private async remember(username: string, pluginName: string, question: string, answer: string): Promise<void> {
    const now = new Date();
    const messages: ConversationMessage[] = [
      { role: 'user', content: question, at: now },
      { role: 'assistant', content: answer, at: now },
    ];
    // The answer was billed: a history that cannot be written never turns it into an error.
    await withinDeadline(this.conversations.db, this.config.MONGODB_READ_TIMEOUT_MS, 'chat history write', () =>
      this.conversations.updateOne(
        { username, pluginName },
        { $push: { messages: { $each: messages, $slice: -this.config.CHAT_HISTORY_LIMIT } }, $set: { updatedAt: now } },
        { upsert: true },
      ),
    ).catch((error: Error) => this.logger.warn(`Chat history of ${username} not written (${error.message})`));
  }
}
