import { Prop, Schema, SchemaFactory } from '@nestjs/mongoose';

export interface ConversationMessage {
  role: 'user' | 'assistant';
  content: string;
  at: Date;
}

/** Recent chat history per user and plugin, sent with the next message. */
@Schema({ collection: 'chat_conversations', versionKey: false })
export class ChatConversation {
  @Prop({ required: true }) username!: string;
  /** Empty string when the chat is not about a particular plugin. */
  @Prop({ required: true, default: '' }) pluginName!: string;
  @Prop({ type: [Object], default: [] }) messages!: ConversationMessage[];
  @Prop() updatedAt?: Date;
}

export const ChatConversationSchema = SchemaFactory.createForClass(ChatConversation);
ChatConversationSchema.index({ username: 1, pluginName: 1 }, { unique: true });
