import { nestsDeeperThan } from './body-depth';

function nested(depth: number): unknown {
  let value: unknown = 'leaf';
  for (let level = 0; level < depth; level++) value = level % 2 === 0 ? [value] : { key: value };
  return value;
}

describe(nestsDeeperThan.name, () => {
  it('counts each array or object as one level; scalars add none', () => {
    expect(nestsDeeperThan('text', 0)).toBe(false);
    expect(nestsDeeperThan({ a: 1, b: 'x' }, 1)).toBe(false);
    expect(nestsDeeperThan({ a: [1] }, 1)).toBe(true);
    expect(nestsDeeperThan(nested(32), 32)).toBe(false);
    expect(nestsDeeperThan(nested(33), 32)).toBe(true);
  });

  it('finds the one deep branch among wide shallow ones', () => {
    expect(nestsDeeperThan({ wide: Array.from({ length: 1000 }, () => ({ x: 1 })), deep: nested(40) }, 32)).toBe(true);
  });

  it('walks a body nested 500,000 levels without overflowing the stack', () => {
    expect(nestsDeeperThan(JSON.parse('['.repeat(500_000) + ']'.repeat(500_000)), 32)).toBe(true);
  });
});
