import { Document } from 'bson';
import { CommandArgs } from './command-args';
import { CommandContext, CommandHandler } from './command-types';
import { ErrorCode, MongoCommandError } from './mongo-error';
import { MAX_BSON_OBJECT_SIZE, MAX_MESSAGE_SIZE_BYTES } from './wire-protocol';

/** The server presents itself as a standalone MongoDB 7.0. */
export const SERVER_VERSION = '7.0.0';
export const MAX_WIRE_VERSION = 21;
export const MAX_WRITE_BATCH_SIZE = 100_000;
const LOGICAL_SESSION_TIMEOUT_MINUTES = 30;

function hello(command: Document, context: CommandContext, legacy: boolean): Document {
  return {
    ...(legacy ? { ismaster: true } : { isWritablePrimary: true }),
    ...(command.helloOk === true ? { helloOk: true } : {}),
    maxBsonObjectSize: MAX_BSON_OBJECT_SIZE,
    maxMessageSizeBytes: MAX_MESSAGE_SIZE_BYTES,
    maxWriteBatchSize: MAX_WRITE_BATCH_SIZE,
    localTime: new Date(context.now()),
    logicalSessionTimeoutMinutes: LOGICAL_SESSION_TIMEOUT_MINUTES,
    connectionId: context.connectionId,
    minWireVersion: 0,
    maxWireVersion: MAX_WIRE_VERSION,
    readOnly: false,
    ok: 1,
  };
}

const PARAMETERS: Document = {
  featureCompatibilityVersion: { version: '7.0' },
  authenticationMechanisms: [],
  maxBSONDepth: 100,
  cursorTimeoutMillis: 600_000,
  transactionLifetimeLimitSeconds: 60,
};

function getParameter(command: Document): Document {
  const requested = command.getParameter;
  const names =
    requested === '*' || (typeof requested === 'object' && requested !== null && requested.allParameters === true)
      ? Object.keys(PARAMETERS)
      : Object.keys(command).filter((name) => Object.prototype.hasOwnProperty.call(PARAMETERS, name));
  if (names.length === 0) throw new MongoCommandError(ErrorCode.InvalidOptions, 'no option found to get');
  return { ...Object.fromEntries(names.map((name) => [name, PARAMETERS[name]])), ok: 1 };
}

function buildInfo(): Document {
  return {
    version: SERVER_VERSION,
    gitVersion: 'in-process',
    versionArray: [7, 0, 0, 0],
    bits: 64,
    debug: false,
    maxBsonObjectSize: MAX_BSON_OBJECT_SIZE,
    storageEngines: ['in-process'],
    javascriptEngine: 'none',
    modules: [],
    ok: 1,
  };
}

export const handshakeCommands: Record<string, CommandHandler> = {
  hello: (command, _db, context) => hello(command, context, false),
  isMaster: (command, _db, context) => hello(command, context, true),
  ismaster: (command, _db, context) => hello(command, context, true),
  ping: () => ({ ok: 1 }),
  buildInfo,
  buildinfo: buildInfo,
  getParameter,
  endSessions: (command) => {
    new CommandArgs('endSessions', command).expectOnly([]);
    return { ok: 1 };
  },
  connectionStatus: () => ({ authInfo: { authenticatedUsers: [], authenticatedUserRoles: [] }, ok: 1 }),
};
