import { setImmediate as nextTurn } from 'node:timers/promises';

/**
 * Longest stretch of sliced work (tokenizing, serialising and parsing large JSON, packing
 * idempotency records) in one turn of the event loop, shared by all of it: ten requests slicing
 * at once must not each take their own 8 ms before a /health probe gets a turn.
 */
export const SLICE_MS = 8;

/** When sliced work began in the current turn; cleared by the next turn's check phase. */
let turnStarted: number | undefined;

function sliceStart(): number {
  if (turnStarted === undefined) {
    turnStarted = performance.now();
    // Queued before any continuation of work that yields in this turn, so it runs first next turn.
    setImmediate(() => (turnStarted = undefined));
  }
  return turnStarted;
}

/** Whether this turn's shared slice is used up. */
export function sliceSpent(): boolean {
  return performance.now() - sliceStart() >= SLICE_MS;
}

/** Hands the event loop back when this turn's shared slice is used up; otherwise returns at once. */
export async function yieldWhenSpent(): Promise<void> {
  if (sliceSpent()) await nextTurn();
}
