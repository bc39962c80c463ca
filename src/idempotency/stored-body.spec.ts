import { Binary, BSON } from 'mongodb';
import { MAX_STORED_BODY_BYTES, packBody, storedSize, unpackBody } from './stored-body';

const vector = (dimensions: number, seed: number) => Array.from({ length: dimensions }, (_, i) => Math.sin(seed * 7919 + i) / 3);
const embeddings = (count: number, dimensions: number) => ({
  object: 'list',
  data: Array.from({ length: count }, (_, index) => ({ object: 'embedding', index, embedding: vector(dimensions, index) })),
  model: 'text-embedding-3-large',
  usage: { prompt_tokens: 12, total_tokens: 12 },
});

/** Through BSON, as MongoDB stores and returns it. */
const roundTrip = (packed: unknown) => BSON.deserialize(BSON.serialize({ body: packed })).body as unknown;

describe('stored idempotency bodies', () => {
  it('keeps long number arrays as float64 binData and gives back exactly the same JSON', async () => {
    const body = embeddings(4, 64);
    const packed = (await packBody(body)) as { data: Array<{ embedding: unknown }> };
    expect(packed.data[0].embedding).toEqual({ _float64: expect.any(Binary) });
    const back = await unpackBody(roundTrip(packed));
    expect(JSON.stringify(back)).toBe(JSON.stringify(body));
    expect(body.data[0].embedding).toHaveLength(64);
  });

  it('leaves short, mixed and non-number arrays and other values as they are', async () => {
    const body = { short: [1, 2, 3], mixed: [...vector(20, 1), 'x'], strings: Array(20).fill('a'), when: new Date(0), nested: { n: null, ok: true } };
    const packed = await packBody(body);
    expect(packed).toEqual(body);
    expect(await unpackBody(roundTrip(packed))).toEqual(body);
  });

  it('keeps edge numbers exact (-0, subnormals, the largest double)', async () => {
    const numbers = [-0, 5e-324, Number.MAX_VALUE, -1e-7, 0.1 + 0.2, ...vector(16, 2)];
    const back = (await unpackBody(roundTrip(await packBody({ numbers })))) as { numbers: number[] };
    expect(back.numbers).toEqual(numbers);
    expect(Object.is(back.numbers[0], -0)).toBe(true);
  });

  it('fits 256 vectors of 3,072 dimensions in a record; 256 of 8,192 do not fit', async () => {
    const large = storedSize(await packBody(embeddings(256, 3072)));
    expect(large).toBeLessThan(MAX_STORED_BODY_BYTES);
    expect(large).toBeLessThan(7 * 1024 * 1024);
    expect(storedSize(await packBody(embeddings(256, 8192)))).toBeGreaterThan(MAX_STORED_BODY_BYTES);
  });
});
