import { VectorMatrix, VectorMatrixBuilder } from './vector-matrix';

const row = (resourceId: string, chunkIndex: number) => ({ id: `${resourceId}#${chunkIndex}`, resourceId, chunkIndex });

function matrix(entries: Array<[string, number, number[]]>, expectedRows = 0): VectorMatrix {
  const builder = new VectorMatrixBuilder(entries[0][2].length, expectedRows);
  for (const [resourceId, chunkIndex, vector] of entries) builder.add(row(resourceId, chunkIndex), vector);
  return builder.build();
}

describe(VectorMatrix.name, () => {
  const corpus = matrix([
    ['a', 0, [1, 0, 0, 0, 0]],
    ['a', 1, [1, 1, 0, 0, 0]],
    ['b', 0, [0, 1, 0, 0, 0]],
    ['b', 1, [0, 0, 1, 0, 0]],
    ['c', 0, [-1, 0, 0, 0, 0]],
  ]);
  const ids = (hits: ReturnType<VectorMatrix['nearest']>) => hits.map((hit) => hit.row.id);

  it('ranks rows by cosine similarity, whatever the vectors\' lengths', () => {
    const hits = corpus.nearest([10, 0, 0, 0, 0], 5);
    expect(ids(hits)).toEqual(['a#0', 'a#1', 'b#0', 'b#1', 'c#0']);
    expect(hits.map((hit) => hit.score)).toEqual([1, expect.closeTo(Math.SQRT1_2, 6), 0, 0, -1]);
  });

  it('returns at most limit rows, best first, keeping row order on ties', () => {
    expect(ids(corpus.nearest([0, 0, 0, 0, 1], 2))).toEqual(['a#0', 'a#1']);
    expect(ids(corpus.nearest([1, 1, 0, 0, 0], 1))).toEqual(['a#1']);
    expect(corpus.nearest([1, 0, 0, 0, 0], 50)).toHaveLength(5);
    expect(corpus.nearest([1, 0, 0, 0, 0], 0)).toEqual([]);
  });

  it('scans only the given resources', () => {
    expect(ids(corpus.nearest([1, 0, 0, 0, 0], 5, ['c', 'b']))).toEqual(['b#0', 'b#1', 'c#0']);
    expect(corpus.nearest([1, 0, 0, 0, 0], 5, ['unknown'])).toEqual([]);
    expect(corpus.nearest([1, 0, 0, 0, 0], 5, [])).toEqual([]);
  });

  it('groups rows that arrive out of resource order', () => {
    const mixed = matrix([
      ['x', 0, [1, 0]],
      ['y', 0, [0, 1]],
      ['x', 1, [1, 1]],
    ]);
    expect(ids(mixed.nearest([1, 0], 3, ['x']))).toEqual(['x#0', 'x#1']);
    expect(ids(mixed.nearest([0, 1], 1))).toEqual(['y#0']);
  });

  it('grows past the expected row count and reports its memory', () => {
    const entries = Array.from({ length: 100 }, (_, i): [string, number, number[]] => [`r${i % 7}`, i, [i + 1, 1, 0]]);
    const grown = matrix(entries, 3);
    expect(grown.count).toBe(100);
    expect(grown.bytes).toBe(100 * 3 * 4);
    expect(grown.nearest([1, 0, 0], 1)[0].row.chunkIndex).toBe(99);
  });

  it('refuses vectors of another dimension', () => {
    expect(() => corpus.nearest([1, 0, 0], 1)).toThrow('the query has 3 dimensions where the stored vectors have 5');
    const builder = new VectorMatrixBuilder(3);
    expect(() => builder.add(row('a', 0), [1, 2])).toThrow(RangeError);
  });

  it('finds nothing in an empty matrix', () => {
    expect(VectorMatrix.empty().nearest([1, 2, 3], 5)).toEqual([]);
  });
});
