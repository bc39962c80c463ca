/** Runs `work`, counting the turns of the event loop that went by meanwhile (a setImmediate chain). */
export async function withTurnCount<T>(work: () => Promise<T>): Promise<{ value: T; turns: number }> {
  let turns = 0;
  let counting = true;
  const tick = () => {
    if (!counting) return;
    turns++;
    setImmediate(tick);
  };
  setImmediate(tick);
  try {
    const value = await work();
    return { value, turns };
  } finally {
    counting = false;
  }
}
