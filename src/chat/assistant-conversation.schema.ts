import { Prop, Schema, SchemaFactory } from '@nestjs/mongoose';
import type { ConversationMessage } from './chat-conversation.schema';

/** A POST /chat conversation: its latest turns, kept per owner, so the same id under two users is two conversations. */
@Schema({ collection: 'assistant_conversations', versionKey: false })
export class AssistantConversation {
  @Prop({ required: true }) userId!: string;
  @Prop({ required: true }) conversationId!: string;
  @Prop({ type: [Object], default: [] }) messages!: ConversationMessage[];
  @Prop() createdAt?: Date;
  @Prop() updatedAt?: Date;
}

export const AssistantConversationSchema = SchemaFactory.createForClass(AssistantConversation);
AssistantConversationSchema.index({ userId: 1, conversationId: 1 }, { unique: true });
