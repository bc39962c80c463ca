import { LruTtlCache } from './lru-ttl-cache';

describe(LruTtlCache.name, () => {
  let now = 0;
  const clock = () => now;
  beforeEach(() => (now = 1_000));

  it('drops the least recently used entry when full', () => {
    const cache = new LruTtlCache<string, number>(2, 60_000, clock);
    cache.set('a', 1);
    cache.set('b', 2);
    expect(cache.get('a')).toBe(1); // a is now the most recent
    cache.set('c', 3);
    expect(cache.get('b')).toBeUndefined();
    expect(cache.get('a')).toBe(1);
    expect(cache.get('c')).toBe(3);
    expect(cache.size).toBe(2);
  });

  it('expires entries ttl after they were set, whether or not they were read', () => {
    const cache = new LruTtlCache<string, number>(10, 1_000, clock);
    cache.set('a', 1);
    now += 600;
    expect(cache.get('a')).toBe(1);
    cache.set('b', 2);
    now += 400;
    expect(cache.get('a')).toBeUndefined();
    expect(cache.size).toBe(1);
    now += 600;
    expect(cache.size).toBe(0);
  });

  it('stores nothing with a capacity or lifetime of 0', () => {
    const none = new LruTtlCache<string, number>(0, 1_000, clock);
    none.set('a', 1);
    expect(none.get('a')).toBeUndefined();
    const instant = new LruTtlCache<string, number>(10, 0, clock);
    instant.set('a', 1);
    expect(instant.get('a')).toBeUndefined();
  });
});
