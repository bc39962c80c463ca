import { bodyShapeProblem } from './body-shape';

function nested(depth: number): unknown {
  let value: unknown = 'leaf';
  for (let level = 0; level < depth; level++) value = level % 2 === 0 ? [value] : { key: value };
  return value;
}

describe(bodyShapeProblem.name, () => {
  const limits = { maxDepth: 32, maxValues: 100 };

  it('counts each array or object as one level; scalars add none', () => {
    expect(bodyShapeProblem('text', limits)).toBeUndefined();
    expect(bodyShapeProblem({ a: 1, b: 'x' }, { maxDepth: 1, maxValues: 100 })).toBeUndefined();
    expect(bodyShapeProblem({ a: [1] }, { maxDepth: 1, maxValues: 100 })).toContain('nested more than 1 levels');
    expect(bodyShapeProblem(nested(32), limits)).toBeUndefined();
    expect(bodyShapeProblem(nested(33), limits)).toContain('nested more than 32 levels');
  });

  it('finds the one deep branch among wide shallow ones', () => {
    expect(bodyShapeProblem({ wide: Array.from({ length: 30 }, () => ({ x: 1 })), deep: nested(40) }, limits)).toContain('nested');
  });

  it('counts array elements and properties at every depth', () => {
    expect(bodyShapeProblem({ list: Array.from({ length: 99 }, () => 1) }, limits)).toBeUndefined();
    expect(bodyShapeProblem({ list: Array.from({ length: 100 }, () => 1) }, limits)).toContain('more than 100 values');
    expect(bodyShapeProblem(Object.fromEntries(Array.from({ length: 101 }, (_, i) => [`k${i}`, 1])), limits)).toContain('more than 100 values');
    expect(bodyShapeProblem({ messages: Array.from({ length: 40 }, () => ({ role: 'user', content: 'x' })) }, limits)).toContain('more than 100 values');
  });

  it('walks a body nested 500,000 levels without overflowing the stack', () => {
    expect(bodyShapeProblem(JSON.parse('['.repeat(500_000) + ']'.repeat(500_000)))).toContain('nested');
  });
});
