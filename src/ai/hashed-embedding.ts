export const HASHED_EMBEDDING_DIMENSIONS = 1536;

function fnv1a(text: string, seed = 0x811c9dc5): number {
  let hash = seed;
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return hash >>> 0;
}

const WORD = /[\p{L}\p{N}]+/gu;
/** Characters of words hashed between two points where an async caller may yield. */
const STEP_CHARS = 16_384;

/**
 * Deterministic stand-in for a real embedding: a signed hashed bag of words,
 * L2-normalised, so texts sharing words have a higher cosine similarity.
 * Empty text maps to a fixed unit vector rather than a zero vector (no NaN cosines).
 */
export function hashedEmbedding(text: string, dimensions = HASHED_EMBEDDING_DIMENSIONS): number[] {
  const work = hashingEmbedding(text, dimensions);
  for (;;) {
    const step = work.next();
    if (step.done) return step.value;
  }
}

/** The same vector in steps: a 200k-character text takes tens of ms, too long for one turn of the event loop. */
export async function hashedEmbeddingAsync(text: string, dimensions = HASHED_EMBEDDING_DIMENSIONS): Promise<number[]> {
  const work = hashingEmbedding(text, dimensions);
  for (;;) {
    const step = work.next();
    if (step.done) return step.value;
    await new Promise((resolve) => setImmediate(resolve));
  }
}

function* hashingEmbedding(text: string, dimensions: number): Generator<void, number[], void> {
  const vector = new Float64Array(dimensions);
  const lower = text.toLowerCase();
  const words = new RegExp(WORD.source, WORD.flags);
  let hashed = 0;
  for (let match = words.exec(lower); match !== null; match = words.exec(lower)) {
    const word = match[0];
    const sign = fnv1a(word, 0x9747b28c) & 1 ? 1 : -1;
    vector[fnv1a(word) % dimensions] += sign;
    hashed += word.length;
    if (hashed >= STEP_CHARS) {
      hashed = 0;
      yield;
    }
  }
  let norm = 0;
  for (const value of vector) norm += value * value;
  if (norm === 0) {
    vector[0] = 1;
    norm = 1;
  }
  const scale = 1 / Math.sqrt(norm);
  return Array.from(vector, (value) => value * scale);
}

export function cosineSimilarity(a: readonly number[], b: readonly number[]): number {
  let dot = 0;
  let normA = 0;
  let normB = 0;
  for (let i = 0; i < Math.min(a.length, b.length); i++) {
    dot += a[i] * b[i];
    normA += a[i] * a[i];
    normB += b[i] * b[i];
  }
  return normA === 0 || normB === 0 ? 0 : dot / Math.sqrt(normA * normB);
}
