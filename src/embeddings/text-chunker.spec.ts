import { TokenizerService } from '../ai/tokenizer.service';
import { chunkByTokens } from './text-chunker';

const MODEL = 'openai/text-embedding-3-small';

describe(chunkByTokens.name, () => {
  const tokenizer = new TokenizerService();
  beforeAll(() => tokenizer.onModuleInit());
  afterAll(() => tokenizer.onModuleDestroy());

  const chunk = (text: string, size: number, overlap: number) => chunkByTokens(text, tokenizer.tokenOffsets(text, MODEL), { size, overlap });
  const words = (count: number) => Array.from({ length: count }, (_, i) => `word${i}`).join(' ');

  it('keeps a text shorter than one chunk whole', () => {
    expect(chunk('The mitochondria is the powerhouse of the cell.', 400, 50)).toEqual([
      { text: 'The mitochondria is the powerhouse of the cell.', tokens: tokenizer.countText('The mitochondria is the powerhouse of the cell.', MODEL) },
    ]);
  });

  it('cuts windows of `size` tokens that start `overlap` tokens before the previous end', () => {
    const text = words(300);
    const offsets = tokenizer.tokenOffsets(text, MODEL);
    const total = offsets.length - 1;
    const chunks = chunk(text, 50, 10);
    const bytes = Buffer.from(text);
    const expected = [];
    for (let start = 0; ; start += 40) {
      const end = Math.min(start + 50, total);
      expected.push({ text: bytes.subarray(offsets[start], offsets[end]).toString(), tokens: end - start });
      if (end === total) break;
    }
    expect(chunks).toEqual(expected);
    expect(chunks.every((piece) => piece.tokens <= 50)).toBe(true);
    // Consecutive chunks share exactly the overlap tokens.
    const overlapText = bytes.subarray(offsets[40], offsets[50]).toString();
    expect(chunks[0].text.endsWith(overlapText)).toBe(true);
    expect(chunks[1].text.startsWith(overlapText)).toBe(true);
  });

  it('without overlap the chunks concatenate back to the text', () => {
    const text = `${words(120)}\n\nA second paragraph, with punctuation; and more.`;
    const chunks = chunk(text, 16, 0);
    expect(chunks.length).toBe(Math.ceil(tokenizer.countText(text, MODEL) / 16));
    expect(chunks.map((piece) => piece.text).join('')).toBe(text);
  });

  it('never cuts a multi-byte character that spans several tokens', () => {
    // Emoji and rare CJK characters take two or more tokens each in cl100k_base.
    const text = '🦄🐙🧬 龘靐齉 '.repeat(40);
    const offsets = tokenizer.tokenOffsets(text, MODEL);
    expect(offsets.length - 1).toBeGreaterThan(Array.from(text).length); // some characters span tokens
    for (const size of [1, 2, 3, 5, 7]) {
      const chunks = chunkByTokens(text, offsets, { size, overlap: 0 });
      expect(chunks.some((piece) => piece.text.includes('\uFFFD'))).toBe(false);
      // Only whitespace-only windows may be dropped.
      expect(chunks.map((piece) => piece.text).join('').replace(/\s/g, '')).toBe(text.replace(/\s/g, ''));
    }
    const overlapping = chunkByTokens(text, offsets, { size: 9, overlap: 4 });
    expect(overlapping.some((piece) => piece.text.includes('\uFFFD'))).toBe(false);
    expect(overlapping.every((piece) => piece.tokens <= 9)).toBe(true);
  });

  it('drops whitespace-only windows and returns nothing for an empty text', () => {
    expect(chunk('', 10, 2)).toEqual([]);
    expect(chunk('   \n\t  ', 10, 2)).toEqual([]);
  });

  it.each([
    [0, 0],
    [10, 10],
    [10, -1],
    [2.5, 0],
  ])('rejects size %d with overlap %d', (size, overlap) => {
    expect(() => chunk('some text', size, overlap)).toThrow(RangeError);
  });
});
