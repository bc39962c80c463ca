import { replayWindow, WINDOW_MS } from './usage-limits.service';

const HOUR = 3_600_000;

describe(replayWindow.name, () => {
  const now = 100 * HOUR;

  it('opens the window at the first call and sums the calls inside it', () => {
    expect(replayWindow([{ at: now - 5 * HOUR, tokens: 10 }, { at: now - HOUR, tokens: 5 }], now)).toEqual({ tokens: 15, start: now - 5 * HOUR });
  });

  it('starts a new window at the first call made once the previous one ended', () => {
    const moments = [
      { at: now - 30 * HOUR, tokens: 100 },
      { at: now - 10 * HOUR, tokens: 7 },
      { at: now - 3 * HOUR, tokens: 3 },
    ];
    // The call at -10 h fell in the window opened at -30 h, which ended at -6 h.
    expect(replayWindow(moments, now)).toEqual({ tokens: 3, start: now - 3 * HOUR });
  });

  it('reports no window when the last one has ended or there were no calls', () => {
    expect(replayWindow([{ at: now - WINDOW_MS, tokens: 10 }], now)).toEqual({ tokens: 0, start: -1 });
    expect(replayWindow([], now)).toEqual({ tokens: 0, start: -1 });
  });
});
