export class DeadlineExceededError extends Error {}

/**
 * Rejects when `operation` has not settled within `ms`. A frozen database never answers and
 * the driver has no per-operation deadline of its own, so reads on the request path race one.
 */
export function withDeadline<T>(operation: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new DeadlineExceededError(`${what} timed out after ${ms} ms`)), ms);
  });
  operation.catch(() => undefined);
  return Promise.race([operation, deadline]).finally(() => clearTimeout(timer));
}

/** How long operations on a database that let a write time out skip it (fail fast) before trying it again. */
export const UNANSWERING_MS = 2_000;
const unanswering = new WeakMap<object, number>();

/**
 * Marks a database (its connection object) as not answering: a write waited its whole timeout,
 * so the server is down or frozen. For UNANSWERING_MS, request-path operations on it go
 * straight to their fallbacks instead of each waiting out its own deadline.
 */
export function markUnanswering(database: object): void {
  unanswering.set(database, Date.now() + UNANSWERING_MS);
}

export function isUnanswering(database: object): boolean {
  return (unanswering.get(database) ?? 0) > Date.now();
}

/** Runs `run` against `database` within `ms`; fails at once, without running it, while the database is marked not answering. */
export function withinDeadline<T>(database: object, ms: number, what: string, run: () => Promise<T>): Promise<T> {
  if (isUnanswering(database)) return Promise.reject(new DeadlineExceededError(`${what} skipped: MongoDB is not answering`));
  return withDeadline(run(), ms, what);
}
