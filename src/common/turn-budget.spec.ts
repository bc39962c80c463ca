import { setImmediate as nextTurn } from 'node:timers/promises';
import { SLICE_MS, sliceSpent, yieldWhenSpent } from './turn-budget';

const busyFor = (ms: number) => {
  const until = performance.now() + ms;
  while (performance.now() < until);
};

describe('turn budget', () => {
  it('hands the event loop back once the turn’s slice is used up, and not before', async () => {
    await nextTurn();
    let turned = false;
    setImmediate(() => (turned = true));
    await yieldWhenSpent();
    expect(turned).toBe(false);
    busyFor(SLICE_MS + 2);
    await yieldWhenSpent();
    expect(turned).toBe(true);
  });

  it('shares one slice between all the work of a turn, and starts a fresh one next turn', async () => {
    await nextTurn();
    // One task uses the slice up...
    expect(sliceSpent()).toBe(false);
    busyFor(SLICE_MS + 2);
    // ...so another, in the same turn, finds it spent instead of starting its own.
    expect(sliceSpent()).toBe(true);
    await yieldWhenSpent();
    expect(sliceSpent()).toBe(false);
  });
});
