/** Writes a batch; returns one outcome per item, in order. A throw fails every item of the batch. */
export type CommitBatch<T, R> = (items: T[]) => Promise<PromiseSettledResult<R>[]>;

interface Waiter<T, R> {
  item: T;
  resolve(value: R): void;
  reject(reason: unknown): void;
}

/**
 * Adaptive group commit, without a timer: an item submitted while no commit is running is
 * committed at once, alone; items submitted while one runs wait and go together in the next
 * commit (at most maxBatch per commit). So a quiet service adds no latency, and a busy one
 * writes as many items per round trip as arrived during the previous one.
 */
export class GroupCommit<T, R> {
  private queue: Waiter<T, R>[] = [];
  private running: Promise<void> | undefined;

  constructor(
    private readonly commit: CommitBatch<T, R>,
    private readonly maxBatch: number,
  ) {
    if (!Number.isSafeInteger(maxBatch) || maxBatch < 1) throw new Error(`maxBatch must be a positive integer (got ${maxBatch})`);
  }

  /** Settles once the commit carrying this item has, with the item's own outcome. */
  submit(item: T): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      this.queue.push({ item, resolve, reject });
      this.running ??= this.run();
    });
  }

  private async run(): Promise<void> {
    try {
      while (this.queue.length > 0) {
        const batch = this.queue.splice(0, this.maxBatch);
        let outcomes: PromiseSettledResult<R>[];
        try {
          outcomes = await this.commit(batch.map((waiter) => waiter.item));
        } catch (error) {
          outcomes = batch.map(() => ({ status: 'rejected', reason: error }));
        }
        batch.forEach((waiter, index) => {
          const outcome = outcomes[index];
          if (outcome?.status === 'fulfilled') waiter.resolve(outcome.value);
          else waiter.reject(outcome ? outcome.reason : new Error('the batch commit returned no outcome for this item'));
        });
      }
    } finally {
      this.running = undefined;
    }
  }
}
