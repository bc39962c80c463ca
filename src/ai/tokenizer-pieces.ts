/**
 * Cuts text into pieces that tiktoken encodes in time linear in their total length.
 *
 * tiktoken's BPE and its `\s+(?!\S)` pre-tokenizer rule are quadratic in the length of one
 * pre-tokenized word, so a long run of letters, CJK, punctuation or whitespace stalls it
 * (100k spaces take 9 s). Pieces are cut where both encodings (cl100k_base, o200k_base)
 * always start a new word, so counting piece by piece gives exactly the count of the whole
 * text; only a run of more than MAX_RUN_CHARS with no such place is cut at a fixed size,
 * and only there can the sum differ from tiktoken's count of the whole text.
 */
export const MAX_RUN_CHARS = 128;
export const MAX_PIECE_CHARS = 4096;

/** U+0085 is Unicode whitespace (so tiktoken's `\s`) though not JavaScript's. */
function isSpace(code: number): boolean {
  return (
    code === 0x20 || (code >= 0x09 && code <= 0x0d) || code === 0x85 || code === 0xa0 || code === 0x1680 ||
    (code >= 0x2000 && code <= 0x200a) || code === 0x2028 || code === 0x2029 || code === 0x202f || code === 0x205f ||
    code === 0x3000 || code === 0xfeff || code === 0x180e
  );
}

/**
 * True where every word of both encodings' patterns ends: before a space or tab that follows a
 * non-space (no word continues from a non-space into a space or tab), or after a line break
 * followed by a non-space other than `/` (o200k_base lets `[\r\n/]*` trail punctuation).
 * The patterns have no look-behind, so the rest of the text splits as it would in the whole.
 */
function isWordStart(text: string, index: number): boolean {
  const code = text.charCodeAt(index);
  const previous = text.charCodeAt(index - 1);
  if (code === 0x20 || code === 0x09) return !isSpace(previous);
  if (previous === 0x0a || previous === 0x0d) return !isSpace(code) && code !== 0x2f;
  return false;
}

function isLowSurrogate(code: number): boolean {
  return code >= 0xdc00 && code <= 0xdfff;
}

export function* tokenizerPieces(text: string, maxRun = MAX_RUN_CHARS, maxPiece = MAX_PIECE_CHARS): Generator<string> {
  let start = 0;
  let runStart = 0;
  for (let index = 1; index < text.length; index++) {
    if (isWordStart(text, index)) {
      runStart = index;
    } else if (index - runStart >= maxRun && !isLowSurrogate(text.charCodeAt(index))) {
      yield text.slice(start, index);
      start = runStart = index;
      continue;
    }
    if (index - start >= maxPiece && runStart > start) {
      yield text.slice(start, runStart);
      start = runStart;
    }
  }
  if (start < text.length) yield text.slice(start);
}
