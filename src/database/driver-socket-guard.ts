import type { Socket } from 'node:net';
import { MongoNetworkError } from 'mongodb';
// The driver's connection class is internal (no public export); the guard below needs its prototype.
const { Connection } = require('mongodb/lib/cmap/connection') as { Connection: { prototype: GuardedConnection } };

interface GuardedConnection {
  id: number | '<monitor>';
  address: string;
  socket: Socket;
  closed: boolean;
  onError(error: Error): void;
  writeCommand(command: unknown, options: unknown): Promise<void>;
  __tokenLedgerSocketGuard?: true;
}

/**
 * Works around a hang in the MongoDB driver (seen in 7.8 and 7.9.1): when a peer closes a
 * connection, Node destroys the socket at once but emits `close` a loop turn later. A command
 * written in between gets `false` from `socket.write` and then waits for a `drain` that a
 * destroyed socket never emits; the driver's `close` handler has nothing in flight to fail, and a
 * destroyed socket's timeout never fires. The command waits forever. When that command is the
 * monitor's `hello` (polling mode, e.g. right after an operation's ECONNRESET asked for an
 * immediate check), the server stays Unknown for good: every operation fails server selection
 * and the app never reaches MongoDB again after an outage.
 *
 * The guard fails such a write with the network error the driver would have raised, so the
 * monitor marks the heartbeat failed and reconnects, and a pooled connection is discarded.
 */
export function installDriverSocketGuard(): void {
  const prototype = Connection.prototype;
  if (prototype.__tokenLedgerSocketGuard) return;
  const writeCommand = prototype.writeCommand;
  prototype.writeCommand = async function guardedWriteCommand(this: GuardedConnection, command: unknown, options: unknown): Promise<void> {
    const socket = this.socket;
    const closedError = () => new MongoNetworkError(`connection ${this.id} to ${this.address} closed`);
    if (socket.destroyed) {
      const error = closedError();
      this.onError(error);
      throw error;
    }
    let onClose: (() => void) | undefined;
    const closed = new Promise<never>((_, reject) => {
      onClose = () => reject(closedError());
      socket.once('close', onClose);
    });
    try {
      return await Promise.race([writeCommand.call(this, command, options), closed]);
    } finally {
      socket.off('close', onClose!);
    }
  };
  prototype.__tokenLedgerSocketGuard = true;
}
