import { Document } from 'bson';
import { CommandReply } from './cursor-store';
import { CommandContext, CommandHandler } from './command-types';
import { handshakeCommands } from './handshake-commands';
import { ErrorCode, MongoCommandError } from './mongo-error';
import { namespaceCommands } from './namespace-commands';
import { readCommands } from './read-commands';
import { validateDatabaseName } from './memory-storage';
import { writeCommands } from './write-commands';

export const COMMANDS: Readonly<Record<string, CommandHandler>> = {
  ...handshakeCommands,
  ...namespaceCommands,
  ...readCommands,
  ...writeCommands,
};

const TRANSACTION_COMMANDS = new Set(['commitTransaction', 'abortTransaction']);

/** A standalone mongod answers any transaction or retryable-write number this way. */
function rejectTransactions(name: string, command: Document): void {
  if (
    TRANSACTION_COMMANDS.has(name) ||
    command.txnNumber !== undefined ||
    command.startTransaction !== undefined ||
    command.autocommit !== undefined
  ) {
    throw new MongoCommandError(
      ErrorCode.IllegalOperation,
      'Transaction numbers are only allowed on a replica set member or mongos',
    );
  }
}

/**
 * Runs one command and always returns a reply: errors become `{ ok: 0, ... }` documents
 * (unexpected ones as InternalError), never exceptions that could reach the socket.
 */
export function dispatchCommand(command: Document, context: CommandContext, defaultDb?: string): CommandReply {
  try {
    const name = Object.keys(command)[0];
    if (name === undefined) throw new MongoCommandError(ErrorCode.CommandNotFound, "no such command: ''");
    const handler = Object.prototype.hasOwnProperty.call(COMMANDS, name) ? COMMANDS[name] : undefined;
    if (!handler) throw new MongoCommandError(ErrorCode.CommandNotFound, `no such command: '${name}'`);
    rejectTransactions(name, command);
    const db = command.$db ?? defaultDb;
    if (db === undefined) throw new MongoCommandError(40571, 'OP_MSG requests require a $db argument');
    return handler(command, validateDatabaseName(db), context);
  } catch (error) {
    if (error instanceof MongoCommandError) return error.toReply();
    return new MongoCommandError(ErrorCode.InternalError, `internal error: ${(error as Error)?.message ?? String(error)}`).toReply();
  }
}
