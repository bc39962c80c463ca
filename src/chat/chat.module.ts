import { Module } from '@nestjs/common';
import { MongooseModule } from '@nestjs/mongoose';
import { AiModule } from '../ai/ai.module';
import { SearchModule } from '../search/search.module';
import { AssistantChatController } from './assistant-chat.controller';
import { AssistantChatService } from './assistant-chat.service';
import { AssistantConversation, AssistantConversationSchema } from './assistant-conversation.schema';
import { ChatConversation, ChatConversationSchema } from './chat-conversation.schema';
import { ChatController } from './chat.controller';
import { ChatService } from './chat.service';
import { OrchaChatController } from './orcha-chat.controller';
import { OrchaChatService } from './orcha-chat.service';

@Module({
  imports: [
    AiModule,
    SearchModule,
    MongooseModule.forFeature([
      { name: ChatConversation.name, schema: ChatConversationSchema },
      { name: AssistantConversation.name, schema: AssistantConversationSchema },
    ]),
  ],
  controllers: [ChatController, OrchaChatController, AssistantChatController],
  providers: [ChatService, OrchaChatService, AssistantChatService],
})
export class ChatModule {}
