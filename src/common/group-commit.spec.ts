import { GroupCommit } from './group-commit';

interface Deferred {
  resolve(): void;
  reject(error: Error): void;
}

/** Lets the event loop turn (a commit starts on the turn after its first item). */
async function turns(): Promise<void> {
  for (let i = 0; i < 3; i += 1) await new Promise((resolve) => setImmediate(resolve));
}

/** A commit function whose calls the test finishes by hand, recording each batch. */
function controlledCommit() {
  const batches: number[][] = [];
  const pending: Deferred[] = [];
  let running = 0;
  let mostAtOnce = 0;
  const commit = async (items: number[]): Promise<PromiseSettledResult<string>[]> => {
    batches.push(items);
    running += 1;
    mostAtOnce = Math.max(mostAtOnce, running);
    try {
      await new Promise<void>((resolve, reject) => pending.push({ resolve, reject }));
    } finally {
      running -= 1;
    }
    return items.map((item) => (item < 0 ? { status: 'rejected', reason: new Error(`item ${item} refused`) } : { status: 'fulfilled', value: `done ${item}` }));
  };
  /** Finishes the oldest unfinished commit and lets its waiters and the next commit start. */
  const finishNext = async (error?: Error) => {
    const next = pending.shift()!;
    if (error) next.reject(error);
    else next.resolve();
    await turns();
  };
  return { commit, batches, finishNext, mostAtOnce: () => mostAtOnce };
}

describe(GroupCommit.name, () => {
  it('commits an item submitted while idle on the next turn of the event loop, alone', async () => {
    const control = controlledCommit();
    const commits = new GroupCommit(control.commit, { maxBatch: 10 });
    const done = commits.submit(1);
    expect(control.batches).toEqual([]);
    await turns();
    expect(control.batches).toEqual([[1]]);
    await control.finishNext();
    await expect(done).resolves.toBe('done 1');
  });

  it('commits the items submitted in the same turn together', async () => {
    const control = controlledCommit();
    const commits = new GroupCommit(control.commit, { maxBatch: 10 });
    const results = [commits.submit(1), commits.submit(2), commits.submit(3)];
    await turns();
    expect(control.batches).toEqual([[1, 2, 3]]);
    await control.finishNext();
    await expect(Promise.all(results)).resolves.toEqual(['done 1', 'done 2', 'done 3']);
  });

  it('queues items while a commit runs and sends them together in the next one, one commit at a time', async () => {
    const control = controlledCommit();
    const commits = new GroupCommit(control.commit, { maxBatch: 10 });
    const results = [commits.submit(1)];
    await turns();
    results.push(commits.submit(2), commits.submit(3), commits.submit(4));
    expect(control.batches).toEqual([[1]]);
    await control.finishNext();
    const late = commits.submit(5);
    expect(control.batches).toEqual([[1], [2, 3, 4]]);
    await control.finishNext();
    expect(control.batches).toEqual([[1], [2, 3, 4], [5]]);
    await control.finishNext();
    await expect(Promise.all([...results, late])).resolves.toEqual(['done 1', 'done 2', 'done 3', 'done 4', 'done 5']);
    expect(control.mostAtOnce()).toBe(1);
  });

  it('puts at most maxBatch items in one commit', async () => {
    const control = controlledCommit();
    const commits = new GroupCommit(control.commit, { maxBatch: 2 });
    const results = [1, 2, 3, 4, 5, 6].map((item) => commits.submit(item));
    await turns();
    for (let i = 0; i < 3; i += 1) await control.finishNext();
    expect(control.batches).toEqual([[1, 2], [3, 4], [5, 6]]);
    await expect(Promise.all(results)).resolves.toHaveLength(6);
  });

  it("settles each item with its own outcome, and fails a whole batch when its commit throws, carrying on after it", async () => {
    const control = controlledCommit();
    const commits = new GroupCommit(control.commit, { maxBatch: 10 });
    const first = commits.submit(1);
    await turns();
    const mixed = [commits.submit(2), commits.submit(-3), commits.submit(4)].map((promise) => promise.catch((error: Error) => error.message));
    await control.finishNext();
    const doomed = [commits.submit(5), commits.submit(6)].map((promise) => promise.catch((error: Error) => error.message));
    await control.finishNext();
    const after = commits.submit(7);
    await control.finishNext(new Error('connection reset'));
    await control.finishNext();
    await expect(first).resolves.toBe('done 1');
    await expect(Promise.all(mixed)).resolves.toEqual(['done 2', 'item -3 refused', 'done 4']);
    await expect(Promise.all(doomed)).resolves.toEqual(['connection reset', 'connection reset']);
    await expect(after).resolves.toBe('done 7');
  });

  it('rejects a batch size that is not a positive integer, and a negative linger', () => {
    expect(() => new GroupCommit(async () => [], { maxBatch: 0 })).toThrow('maxBatch must be a positive integer (got 0)');
    expect(() => new GroupCommit(async () => [], { maxBatch: 1, lingerMs: -1 })).toThrow('lingerMs must be a non-negative number (got -1)');
  });

  describe('with a linger', () => {
    /** A group commit whose first item (0) is being committed, so whatever comes next arrives while busy. */
    async function busy(options: { maxBatch: number; lingerMs: number }) {
      const control = controlledCommit();
      const commits = new GroupCommit(control.commit, options);
      const first = commits.submit(0);
      await turns();
      expect(control.batches).toEqual([[0]]);
      return { control, commits, first };
    }

    it('commits an item that arrives while idle without lingering, and while busy gathers items until the batch is full', async () => {
      const { control, commits, first } = await busy({ maxBatch: 3, lingerMs: 60_000 });
      const results = [first, commits.submit(1), commits.submit(2)];
      await control.finishNext();
      expect(control.batches).toEqual([[0]]);
      results.push(commits.submit(3), commits.submit(4));
      await turns();
      expect(control.batches).toEqual([[0], [1, 2, 3]]);
      await control.finishNext();
      // The fifth item lingers again, behind the full batch.
      expect(control.batches).toEqual([[0], [1, 2, 3]]);
      commits.hurry();
      await turns();
      expect(control.batches).toEqual([[0], [1, 2, 3], [4]]);
      await control.finishNext();
      await expect(Promise.all(results)).resolves.toEqual(['done 0', 'done 1', 'done 2', 'done 3', 'done 4']);
      // Idle again: the next item goes on the next turn, without lingering.
      const later = commits.submit(5);
      await turns();
      expect(control.batches).toHaveLength(4);
      await control.finishNext();
      await expect(later).resolves.toBe('done 5');
    });

    it('commits at once what was submitted before hurry(), and lingers for what came after', async () => {
      const { control, commits, first } = await busy({ maxBatch: 10, lingerMs: 60_000 });
      const early = [commits.submit(1), commits.submit(2)];
      commits.hurry();
      await control.finishNext();
      expect(control.batches).toEqual([[0], [1, 2]]);
      const late = commits.submit(3);
      await control.finishNext();
      expect(control.batches).toEqual([[0], [1, 2]]);
      await expect(Promise.all([first, ...early])).resolves.toEqual(['done 0', 'done 1', 'done 2']);
      commits.hurry();
      await turns();
      expect(control.batches).toEqual([[0], [1, 2], [3]]);
      await control.finishNext();
      await expect(late).resolves.toBe('done 3');
    });

    it('starts the commit when the linger runs out', async () => {
      const { control, commits, first } = await busy({ maxBatch: 10, lingerMs: 20 });
      const done = [first, commits.submit(1), commits.submit(2)];
      await control.finishNext();
      expect(control.batches).toEqual([[0]]);
      while (control.batches.length === 1) await new Promise((resolve) => setTimeout(resolve, 5));
      expect(control.batches).toEqual([[0], [1, 2]]);
      await control.finishNext();
      await expect(Promise.all(done)).resolves.toEqual(['done 0', 'done 1', 'done 2']);
    });
  });
});
