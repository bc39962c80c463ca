/** Bounds the search; the largest structured answer (a plugin project) is ~1 MiB of content plus escaping. */
export const MAX_JSON_ANSWER_CHARS = 4 * 1024 * 1024;
const MAX_CANDIDATES = 20;

export type JsonAnswer = { ok: true; value: Record<string, unknown> } | { ok: false; error: string };

/**
 * Reads a JSON object out of a model's answer the ways models actually send it: the whole
 * answer, the inside of a ```json fence, or the first balanced `{...}` in prose that parses.
 * Brace counting skips string literals, so code inside JSON strings does not confuse it.
 */
export function parseJsonAnswer(text: string): JsonAnswer {
  if (text.length > MAX_JSON_ANSWER_CHARS) return { ok: false, error: `answer is longer than ${MAX_JSON_ANSWER_CHARS} characters` };
  const whole = tryObject(text.trim());
  if (whole) return { ok: true, value: whole };
  let start = text.indexOf('{');
  if (start === -1) return { ok: false, error: 'answer contains no JSON object' };
  let error = 'answer contains no complete JSON object; it may have been cut off';
  for (let attempt = 0; start !== -1 && attempt < MAX_CANDIDATES; attempt++) {
    const end = balancedEnd(text, start);
    if (end !== -1) {
      try {
        const value: unknown = JSON.parse(text.slice(start, end + 1));
        if (isRecord(value)) return { ok: true, value };
      } catch (parseError) {
        error = `answer's JSON is invalid: ${(parseError as Error).message}`;
      }
    }
    start = text.indexOf('{', start + 1);
  }
  return { ok: false, error };
}

function tryObject(text: string): Record<string, unknown> | undefined {
  if (!text.startsWith('{')) return undefined;
  try {
    const value: unknown = JSON.parse(text);
    return isRecord(value) ? value : undefined;
  } catch {
    return undefined;
  }
}

function balancedEnd(text: string, start: number): number {
  let depth = 0;
  let inString = false;
  for (let i = start; i < text.length; i++) {
    const char = text[i];
    if (inString) {
      if (char === '\\') i++;
      else if (char === '"') inString = false;
    } else if (char === '"') {
      inString = true;
    } else if (char === '{') {
      depth++;
    } else if (char === '}') {
      depth--;
      if (depth === 0) return i;
    }
  }
  return -1;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
