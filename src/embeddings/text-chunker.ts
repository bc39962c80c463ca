export interface ChunkOptions {
  /** Tokens per chunk at most. */
  size: number;
  /** Tokens each chunk repeats from the end of the previous one; less than size. */
  overlap: number;
}

export interface TextChunk {
  text: string;
  tokens: number;
}

const isContinuationByte = (byte: number) => (byte & 0xc0) === 0x80;

/**
 * Splits a text into windows of at most `size` tokens, each starting `overlap` tokens
 * before the previous one ended. `offsets` are the tokens' UTF-8 byte offsets
 * (TokenizerService.tokenOffsets). A token can hold part of a multi-byte character (an
 * emoji split by the BPE): windows are only cut where a character starts, so no chunk
 * carries half a character. Whitespace-only windows are dropped.
 */
export function chunkByTokens(text: string, offsets: readonly number[], { size, overlap }: ChunkOptions): TextChunk[] {
  if (!Number.isInteger(size) || size < 1) throw new RangeError(`chunk size must be a positive integer (got ${size})`);
  if (!Number.isInteger(overlap) || overlap < 0 || overlap >= size) {
    throw new RangeError(`chunk overlap must be an integer from 0 to size - 1 (got ${overlap} with size ${size})`);
  }
  const bytes = Buffer.from(text, 'utf8');
  const count = offsets.length - 1;
  if (offsets[count] !== bytes.length) throw new RangeError('token offsets do not cover the text');
  const cuttable = (token: number) => token === 0 || token === count || !isContinuationByte(bytes[offsets[token]]);

  const chunks: TextChunk[] = [];
  for (let start = 0; start < count; ) {
    let end = Math.min(start + size, count);
    while (end > start + 1 && !cuttable(end)) end--;
    while (!cuttable(end)) end++;
    const piece = bytes.subarray(offsets[start], offsets[end]).toString('utf8');
    if (piece.trim().length > 0) chunks.push({ text: piece, tokens: end - start });
    if (end === count) break;
    let next = Math.max(end - overlap, start + 1);
    while (!cuttable(next)) next++;
    start = next;
  }
  return chunks;
}
