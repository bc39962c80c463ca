import { createHash } from 'node:crypto';

/** The form of a query that cache keys use: lower-case, whitespace collapsed, trimmed. */
export function normaliseQuery(query: string): string {
  return query.toLowerCase().replace(/\s+/g, ' ').trim();
}

export function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}
