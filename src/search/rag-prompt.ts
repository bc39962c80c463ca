import type { ChatMessage } from '../ai/ai-provider.interface';
import type { ScoredChunk } from '../embeddings/resource-chunks.service';

export const RAG_INSTRUCTIONS =
  "Answer the question using only the passages below, taken from the user's resources. " +
  'After each statement, cite the resource id of the passage it comes from in square brackets, e.g. [pdf_123]. ' +
  'If the passages do not contain the answer, say so instead of guessing.';

export const NO_CONTEXT_ANSWER = "I couldn't find anything in your resources about that, so I can't answer it from them.";

export interface PassageLimits {
  /** Chunks scoring lower are not relevant enough to be context. */
  minScore: number;
  /** Context tokens at most; the best chunk is always kept. */
  maxTokens: number;
}

/** The relevant chunks, best first, that fit the token budget. */
export function selectPassages(hits: readonly ScoredChunk[], limits: PassageLimits, countTokens: (text: string) => number): ScoredChunk[] {
  const chosen: ScoredChunk[] = [];
  let tokens = 0;
  for (const hit of hits) {
    if (hit.score < limits.minScore) continue;
    const cost = countTokens(hit.text);
    if (chosen.length > 0 && tokens + cost > limits.maxTokens) break;
    chosen.push(hit);
    tokens += cost;
  }
  return chosen;
}

export function formatPassages(passages: readonly ScoredChunk[]): string {
  return passages.map((passage) => `[${passage.resourceId}] (chunk ${passage.chunkIndex})\n${passage.text.trim()}`).join('\n\n');
}

export function ragMessages(query: string, passages: readonly ScoredChunk[]): ChatMessage[] {
  return [
    { role: 'system', content: RAG_INSTRUCTIONS },
    { role: 'user', content: `Passages:\n\n${formatPassages(passages)}\n\nQuestion: ${query}` },
  ];
}

/** What the simulated provider answers (no AI configured): the best passage, cited. */
export function simulatedRagAnswer(passages: readonly ScoredChunk[]): string {
  const best = passages[0];
  const excerpt = best.text.trim().replace(/\s+/g, ' ');
  return `[simulated answer: no AI provider is configured] The most relevant passage is [${best.resourceId}]: "${excerpt.length > 200 ? `${excerpt.slice(0, 200)}...` : excerpt}"`;
}
