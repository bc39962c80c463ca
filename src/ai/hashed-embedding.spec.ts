import { withTurnCount } from '../../test/support/event-loop-turns';
import { hashedEmbedding, hashedEmbeddingAsync } from './hashed-embedding';

describe('hashedEmbedding', () => {
  const long = Array.from({ length: 20_000 }, (_, index) => `word${index % 997} Ünïcode 中文 ${'a'.repeat(index % 50)}`).join(' ');

  it('gives the same vector in steps as in one go', async () => {
    for (const text of [long, 'the cat sat on the mat', '', '!!!']) {
      await expect(hashedEmbeddingAsync(text, 64)).resolves.toEqual(hashedEmbedding(text, 64));
    }
  });

  it('hands the event loop back while hashing a long text', async () => {
    const { turns } = await withTurnCount(() => hashedEmbeddingAsync(long));
    expect(turns).toBeGreaterThan(1);
  });
});
