import { get_encoding, Tiktoken } from 'tiktoken';
import { seededRandom } from '../../test/support/openapi-fuzz';
import { MAX_PIECE_CHARS, MAX_RUN_CHARS, tokenizerPieces } from './tokenizer-pieces';

// Every kind of character the encodings' patterns treat differently, repeated so runs form.
const ALPHABET = ['a', 'B', 'z', 'É', 'ß', '7', '42', ' ', ' ', '  ', '\t', '\n', '\r\n', '\n\n', '/', "'s", "'", 'll', '!', '.', ',', '{', '"', '中', '文', '😀', '\u00a0', '\u0085', '\u2028', '\u3000', '\u0301', '-'];

function randomText(next: () => number, length: number): string {
  let text = '';
  while (text.length < length) text += ALPHABET[Math.floor(next() * ALPHABET.length)];
  return text;
}

describe(tokenizerPieces.name, () => {
  const encoders: Record<string, Tiktoken> = { cl100k_base: get_encoding('cl100k_base'), o200k_base: get_encoding('o200k_base') };
  afterAll(() => Object.values(encoders).forEach((encoder) => encoder.free()));

  it.each(Object.keys(encoders))('cuts only where %s starts a new word, so the counts add up exactly', (encoding) => {
    const encoder = encoders[encoding];
    const next = seededRandom(16);
    for (let round = 0; round < 300; round++) {
      const text = randomText(next, 50 + Math.floor(next() * 400));
      // Tiny limits put a cut at nearly every allowed place; runs longer than the text are never force-cut.
      const pieces = [...tokenizerPieces(text, text.length + 1, 1 + Math.floor(next() * 8))];
      expect(pieces.join('')).toBe(text);
      const summed = pieces.reduce((sum, piece) => sum + encoder.encode_ordinary(piece).length, 0);
      if (summed !== encoder.encode_ordinary(text).length) throw new Error(`${encoding} count differs for ${JSON.stringify(text)} cut as ${JSON.stringify(pieces)}`);
    }
  });

  it('never gives a piece longer than MAX_PIECE_CHARS nor a run without a word start longer than MAX_RUN_CHARS', () => {
    const texts = ['a'.repeat(10_000), ' '.repeat(10_000), '\n'.repeat(10_000), '中'.repeat(10_000), 'word '.repeat(10_000), '😀'.repeat(5_000)];
    for (const text of texts) {
      const pieces = [...tokenizerPieces(text)];
      expect(pieces.join('')).toBe(text);
      for (const piece of pieces) expect(piece.length).toBeLessThanOrEqual(MAX_PIECE_CHARS);
      if (!text.includes(' ')) for (const piece of pieces) expect(piece.length).toBeLessThanOrEqual(MAX_RUN_CHARS + 1);
    }
  });

  it('never splits a surrogate pair', () => {
    for (const piece of tokenizerPieces('😀'.repeat(1_000), 7)) {
      expect(piece.charCodeAt(0) >= 0xdc00 && piece.charCodeAt(0) <= 0xdfff).toBe(false);
    }
  });
});
