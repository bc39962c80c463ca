import { Document } from 'bson';
import { CommandReply, CursorStore } from './cursor-store';
import { MemoryStorage } from './memory-storage';

export interface CommandContext {
  readonly storage: MemoryStorage;
  readonly cursors: CursorStore;
  readonly connectionId: number;
  /** Milliseconds since the epoch; one clock for TTL, cursors and $currentDate. */
  now(): number;
}

/** Runs one command synchronously: a command is atomic because nothing else runs meanwhile. */
export type CommandHandler = (command: Document, db: string, context: CommandContext) => CommandReply;
