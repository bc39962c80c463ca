import { withTurnCount } from '../../test/support/event-loop-turns';
import { parseInSlices, SLICED_PARSE_MIN_CHARS, stringifyInSlices } from './sliced-json';

const embeddings = (count: number, dimensions: number) => ({
  object: 'list',
  data: Array.from({ length: count }, (_, index) => ({ object: 'embedding', index, embedding: Array.from({ length: dimensions }, (_, i) => Math.sin(index * 7919 + i) / 3) })),
  model: 'text-embedding-3-small',
  usage: { prompt_tokens: 12, total_tokens: 12 },
});

describe(stringifyInSlices.name, () => {
  it.each([
    ['an embeddings list', embeddings(3, 8)],
    ['an empty object', {}],
    ['an empty array', []],
    ['a top-level array', [1, 'two', { three: 3 }, null]],
    ['undefined properties and elements', { a: undefined, b: [undefined, () => 1, 2], c: 'x', d: () => 1 }],
    ['only undefined properties', { a: undefined }],
    ['unicode and escapes', { text: 'Grüße "quoted" \n\t 🚀 \u2028', list: ['日本語', '\u0000'] }],
    ['numbers at the edges', { values: [-0, 0.1 + 0.2, 1e21, -1e-7, Number.MAX_VALUE, 5e-324], nan: NaN }],
    ['nested arrays', { grid: [[1, 2], [], [[3]]] }],
    ['objects with a toJSON', { when: new Date(0), list: [new Date(1)] }],
    ['a string', 'plain'],
    ['null', null],
  ])('writes the bytes JSON.stringify writes for %s', async (_name, value) => {
    expect((await stringifyInSlices(value)).toString('utf8')).toBe(JSON.stringify(value));
  });

  it('hands the event loop back while it serialises 256 dense vectors', async () => {
    const body = embeddings(256, 1536);
    const { value: json, turns } = await withTurnCount(() => stringifyInSlices(body));
    expect(json.toString('utf8')).toBe(JSON.stringify(body));
    expect(turns).toBeGreaterThan(1);
  });
});

describe(parseInSlices.name, () => {
  /** Past the size from which it parses in slices, with whitespace around every token. */
  const padded = (json: string) => ` \r\n${json}\t` + ' '.repeat(SLICED_PARSE_MIN_CHARS);
  const big = embeddings(64, 1536);

  it.each([
    ['an embeddings answer', JSON.stringify(big)],
    ['the same with whitespace everywhere', padded(JSON.stringify(embeddings(2, 4), null, '\t').replace(/\n/g, '\r\n '))],
    ['empty arrays and nested values', padded('{"a":[],"b":[[1,[2]],{"c":"]}\\"\\\\"}],"d":{"e":[1,2]},"f":"x,y","g":true,"h":null,"i":-1.5e-7}')],
    ['a repeated key and "__proto__"', padded('{"a":1,"__proto__":{"polluted":true},"a":[2]}')],
    ['a top-level array', padded('[1,2,3]')],
    ['an empty object', padded('{}')],
  ])('gives what JSON.parse gives for %s', async (_name, text) => {
    const parsed = await parseInSlices(text);
    expect(parsed).toEqual(JSON.parse(text));
    expect(Object.getPrototypeOf(parsed)).toBe(Object.getPrototypeOf(JSON.parse(text)));
    expect(({} as { polluted?: boolean }).polluted).toBeUndefined();
  });

  it.each([
    ['a trailing comma in an array', '{"data":[1,2,]}'],
    ['a trailing comma in the object', '{"data":[1],}'],
    ['a missing element', '{"data":[1,,2]}'],
    ['a missing value', '{"data":}'],
    ['a cut-off body', '{"data":[[1,2],[3'],
    ['an unterminated string', '{"data":["abc'],
    ['an unquoted key', '{data:[1]}'],
    ['a missing colon', '{"data" [1]}'],
    ['text after the object', '{"data":[1]} x'],
    ['a malformed element', '{"data":[{"a":01}]}'],
  ])('throws a SyntaxError, as JSON.parse does, for %s', async (_name, text) => {
    const long = text.replace('{', '{' + ' '.repeat(SLICED_PARSE_MIN_CHARS));
    expect(() => JSON.parse(long)).toThrow(SyntaxError);
    await expect(parseInSlices(long)).rejects.toThrow(SyntaxError);
  });

  it('hands the event loop back while it parses 64 dense vectors', async () => {
    const text = JSON.stringify(big);
    const { value, turns } = await withTurnCount(() => parseInSlices(text));
    expect(value).toEqual(big);
    expect(turns).toBeGreaterThan(0);
  });
});
