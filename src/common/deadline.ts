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
