import type { OperationType } from '../token-tracking/usage-record';
import type { Reservation } from './usage-limits.service';

/** One provider call a request will make, reserved before the first call. */
export interface PlannedCall {
  /** The operations whose calls may use this part (e.g. chat_info or chat_modification for a chat answer). */
  operations: OperationType[];
  promptTokens: number;
  /** max_tokens the call asks for. */
  maxCompletionTokens: number;
  /** Completion tokens held for it (less than asked when the call names no max_tokens). */
  reserveCompletionTokens: number;
}

/**
 * The parts a request reserved for all its provider calls at once. Each call takes the first
 * unused part meant for its operation; a call that was not billed puts its part back (the
 * fallback model may use it); what is left when the request ends is released.
 */
export class RequestBudget {
  private readonly unused: Array<{ operations: OperationType[]; reservation: Reservation }>;
  private readonly taken = new Map<string, { operations: OperationType[]; reservation: Reservation }>();

  constructor(calls: PlannedCall[], reservations: Reservation[]) {
    this.unused = calls.map((call, index) => ({ operations: call.operations, reservation: reservations[index] }));
  }

  take(operation: OperationType): Reservation | undefined {
    const index = this.unused.findIndex((part) => part.operations.includes(operation));
    if (index < 0) return undefined;
    const [part] = this.unused.splice(index, 1);
    this.taken.set(part.reservation.id, part);
    return part.reservation;
  }

  /** The part the next call of `operation` would take, without taking it (e.g. to fit a prompt to what it holds). */
  peek(operation: OperationType): Reservation | undefined {
    return this.unused.find((part) => part.operations.includes(operation))?.reservation;
  }

  /** Whether the reservation came from this budget; it is then held again for a later call. */
  giveBack(reservation: Reservation): boolean {
    const part = this.taken.get(reservation.id);
    if (!part) return false;
    this.taken.delete(reservation.id);
    this.unused.unshift(part);
    return true;
  }

  /** The parts no call used, to release when the request ends. */
  drain(): Reservation[] {
    return this.unused.splice(0).map((part) => part.reservation);
  }
}
