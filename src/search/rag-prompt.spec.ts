import type { ScoredChunk } from '../embeddings/resource-chunks.service';
import { ragMessages, RAG_INSTRUCTIONS, selectPassages } from './rag-prompt';

const hit = (resourceId: string, score: number, text = `text of ${resourceId}`): ScoredChunk => ({ id: resourceId, resourceId, chunkIndex: 0, score, text });
const words = (text: string) => text.split(' ').length;

describe(selectPassages.name, () => {
  it('keeps relevant chunks, best first, within the token budget', () => {
    const hits = [hit('a', 0.9, 'one two three'), hit('b', 0.8, 'four five'), hit('c', 0.7, 'six seven eight'), hit('d', 0.1)];
    expect(selectPassages(hits, { minScore: 0.15, maxTokens: 100 }, words).map((p) => p.resourceId)).toEqual(['a', 'b', 'c']);
    expect(selectPassages(hits, { minScore: 0.15, maxTokens: 5 }, words).map((p) => p.resourceId)).toEqual(['a', 'b']);
    expect(selectPassages(hits, { minScore: 0.75, maxTokens: 100 }, words).map((p) => p.resourceId)).toEqual(['a', 'b']);
  });

  it('always keeps the best relevant chunk, even over budget, and nothing irrelevant', () => {
    expect(selectPassages([hit('a', 0.9, 'a very long passage indeed')], { minScore: 0, maxTokens: 1 }, words)).toHaveLength(1);
    expect(selectPassages([hit('a', 0.1), hit('b', -0.2)], { minScore: 0.15, maxTokens: 100 }, words)).toEqual([]);
  });
});

describe(ragMessages.name, () => {
  it('labels each passage with its resource id for citing, then asks the question', () => {
    const [system, user] = ragMessages('Where is energy made?', [hit('pdf_123', 0.9, ' Mitochondria make energy. '), hit('notes', 0.5, 'Cells divide.')]);
    expect(system).toEqual({ role: 'system', content: RAG_INSTRUCTIONS });
    expect(user.content).toBe('Passages:\n\n[pdf_123] (chunk 0)\nMitochondria make energy.\n\n[notes] (chunk 0)\nCells divide.\n\nQuestion: Where is energy made?');
  });
});
