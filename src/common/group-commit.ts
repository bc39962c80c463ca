/** Writes a batch; returns one outcome per item, in order. A throw fails every item of the batch. */
export type CommitBatch<T, R> = (items: T[]) => Promise<PromiseSettledResult<R>[]>;

interface Waiter<T, R> {
  item: T;
  resolve(value: R): void;
  reject(reason: unknown): void;
}

export interface GroupCommitOptions {
  /** Most items per commit. */
  maxBatch: number;
  /**
   * While busy, how long each commit after the first waits for more items before it starts
   * (0: at once). For commits nobody waits on, where a little delay buys larger batches under
   * load; an item arriving while idle never lingers. hurry() cuts it short.
   */
  lingerMs?: number;
}

/**
 * Adaptive group commit: a commit starts on the next turn of the event loop, with every item
 * submitted until then (answers read in the same I/O poll go together); items submitted while
 * it runs wait and go together in the next commit (at most maxBatch per commit). So a quiet
 * service adds no more than a turn of latency, and a busy one writes as many items per round
 * trip as arrived during the previous one. With lingerMs, a commit that follows another without
 * a pause first waits that long (or until maxBatch items wait) to gather more.
 */
export class GroupCommit<T, R> {
  private queue: Waiter<T, R>[] = [];
  private running: Promise<void> | undefined;
  private readonly maxBatch: number;
  private readonly lingerMs: number;
  /** Items submitted so far, and how many of them hurry() asked to commit without lingering. */
  private submitted = 0;
  private hurried = 0;
  private wake: (() => void) | undefined;

  constructor(
    private readonly commit: CommitBatch<T, R>,
    options: GroupCommitOptions,
  ) {
    const { maxBatch, lingerMs = 0 } = options;
    if (!Number.isSafeInteger(maxBatch) || maxBatch < 1) throw new Error(`maxBatch must be a positive integer (got ${maxBatch})`);
    if (!Number.isFinite(lingerMs) || lingerMs < 0) throw new Error(`lingerMs must be a non-negative number (got ${lingerMs})`);
    this.maxBatch = maxBatch;
    this.lingerMs = lingerMs;
  }

  /** Settles once the commit carrying this item has, with the item's own outcome. */
  submit(item: T): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      this.queue.push({ item, resolve, reject });
      this.submitted += 1;
      if (this.queue.length >= this.maxBatch) this.wake?.();
      this.running ??= this.run();
    });
  }

  /** Commits every item submitted so far without lingering (e.g. before a read that must see them). */
  hurry(): void {
    this.hurried = this.submitted;
    this.wake?.();
  }

  private async run(): Promise<void> {
    try {
      for (let busy = false; this.queue.length > 0; busy = true) {
        await ((busy && this.linger()) || nextTurn());
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

  /** Waits lingerMs, unless the batch is full or a waiting item was hurried (then undefined). */
  private linger(): Promise<void> | undefined {
    const oldestWaiting = this.submitted - this.queue.length + 1;
    if (this.lingerMs === 0 || this.queue.length >= this.maxBatch || oldestWaiting <= this.hurried) return undefined;
    return new Promise<void>((resolve) => {
      const timer = setTimeout(() => this.wake?.(), this.lingerMs);
      this.wake = () => {
        clearTimeout(timer);
        this.wake = undefined;
        resolve();
      };
    });
  }
}

const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));
