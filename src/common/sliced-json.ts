/** Serialising work done in one turn of the event loop before handing it back. */
export const SLICE_BUDGET_MS = 8;

const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

/** Work split across turns of the event loop: `spent()` hands the loop back once SLICE_BUDGET_MS went by. */
export class TurnBudget {
  private started = performance.now();

  async spent(): Promise<void> {
    if (performance.now() - this.started < SLICE_BUDGET_MS) return;
    await nextTurn();
    this.started = performance.now();
  }
}

/** One array element as JSON.stringify writes it inside an array (undefined and functions become null). */
function element(value: unknown): string {
  return JSON.stringify(value) ?? 'null';
}

/**
 * The bytes of JSON.stringify(value) for a plain object or array, built across turns of the event
 * loop: the elements of its array properties (or of the array itself) are serialised one by one,
 * and the event loop is handed back whenever SLICE_BUDGET_MS have gone by. 256 dense 1536-dimension
 * vectors are ~8 MB of JSON, 100-250 ms for one JSON.stringify call; one vector is under 2 ms.
 */
export async function stringifyInSlices(value: unknown): Promise<Buffer> {
  const parts: Buffer[] = [];
  let sliceStarted = performance.now();
  const emit = async (text: string) => {
    parts.push(Buffer.from(text));
    if (performance.now() - sliceStarted < SLICE_BUDGET_MS) return;
    await nextTurn();
    sliceStarted = performance.now();
  };
  const emitArray = async (items: readonly unknown[]) => {
    await emit('[');
    for (let index = 0; index < items.length; index++) await emit((index > 0 ? ',' : '') + element(items[index]));
    await emit(']');
  };

  if (Array.isArray(value)) {
    await emitArray(value);
  } else if (isPlainObject(value)) {
    let first = true;
    for (const [key, property] of Object.entries(value)) {
      const head = `${first ? '{' : ','}${JSON.stringify(key)}:`;
      if (Array.isArray(property)) {
        await emit(head);
        await emitArray(property);
      } else {
        const text = JSON.stringify(property);
        // JSON.stringify leaves out properties whose value has no JSON form (undefined, functions).
        if (text === undefined) continue;
        await emit(head + text);
      }
      first = false;
    }
    await emit(first ? '{}' : '}');
  } else {
    await emit(JSON.stringify(value) ?? 'null');
  }
  return Buffer.concat(parts);
}

/** An object JSON.stringify would write property by property (no toJSON of its own). */
function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (value === null || typeof value !== 'object') return false;
  const prototype = Object.getPrototypeOf(value) as object | null;
  return (prototype === Object.prototype || prototype === null) && typeof (value as { toJSON?: unknown }).toJSON !== 'function';
}
