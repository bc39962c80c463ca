import { Prop, Schema, SchemaFactory } from '@nestjs/mongoose';
import { HydratedDocument } from 'mongoose';
import { Role, ROLES } from './principal';

/** An API key; the key itself is never stored, only its SHA-256 (see api-key.ts). */
@Schema({ collection: 'api_keys', versionKey: false })
export class ApiKey {
  /** Non-secret start of the key (`tl_user_AbC123`), for telling keys apart in listings. */
  @Prop({ required: true })
  prefix!: string;

  @Prop({ required: true, unique: true })
  hash!: string;

  @Prop({ required: true, enum: ROLES, type: String })
  role!: Role;

  /** The only user a `user` key may act as; unset for admin and service keys. */
  @Prop({ index: true })
  userId?: string;

  @Prop()
  name?: string;

  @Prop({ required: true, default: () => new Date() })
  createdAt!: Date;

  /** Written at most once a minute per key and process, off the request path. */
  @Prop({ type: Date, default: null })
  lastUsedAt!: Date | null;

  @Prop({ type: Date, default: null })
  revokedAt!: Date | null;
}

export type ApiKeyDocument = HydratedDocument<ApiKey>;
export const ApiKeySchema = SchemaFactory.createForClass(ApiKey);
