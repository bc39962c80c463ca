import { Module } from '@nestjs/common';
import { MongooseModule } from '@nestjs/mongoose';
import { AiModule } from '../ai/ai.module';
import { SearchModule } from '../search/search.module';
import { ChatConversation, ChatConversationSchema } from './chat-conversation.schema';
import { ChatController } from './chat.controller';
import { ChatService } from './chat.service';
import { OrchaChatController } from './orcha-chat.controller';
import { OrchaChatService } from './orcha-chat.service';

@Module({
  imports: [AiModule, SearchModule, MongooseModule.forFeature([{ name: ChatConversation.name, schema: ChatConversationSchema }])],
  controllers: [ChatController, OrchaChatController],
  providers: [ChatService, OrchaChatService],
})
export class ChatModule {}
