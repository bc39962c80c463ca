import { createHash, randomInt, timingSafeEqual } from 'node:crypto';
import type { Role } from './principal';

const BASE62 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
const SECRET_LENGTH = 40; // ~238 bits of randomness
/** Random characters kept in the listed prefix: enough to tell keys apart, too few to matter. */
const PREFIX_RANDOM_CHARS = 6;

export const API_KEY_FORMAT = /^tl_(admin|service|user)_[A-Za-z0-9]{32,128}$/;

/** `tl_<role>_<40 base62 chars>`: the role is visible for humans; the stored role is what counts. */
export function generateApiKey(role: Role): { key: string; prefix: string; hash: string } {
  let secret = '';
  for (let i = 0; i < SECRET_LENGTH; i += 1) secret += BASE62[randomInt(BASE62.length)];
  const key = `tl_${role}_${secret}`;
  return { key, prefix: key.slice(0, `tl_${role}_`.length + PREFIX_RANDOM_CHARS), hash: hashApiKey(key) };
}

/**
 * Keys are stored as their SHA-256 only. A fast unsalted hash is enough here because the keys
 * are ~238-bit random strings, not passwords: nobody can brute-force or precompute that space,
 * so a slow KDF (bcrypt, argon2) would only add latency to every uncached request and would
 * prevent the direct lookup by a unique index on the hash.
 */
export function hashApiKey(key: string): string {
  return createHash('sha256').update(key, 'utf8').digest('hex');
}

/** Constant-time comparison of two secrets of any length (compares their digests). */
export function secretsEqual(presented: string, expected: string): boolean {
  const a = createHash('sha256').update(presented, 'utf8').digest();
  const b = createHash('sha256').update(expected, 'utf8').digest();
  return timingSafeEqual(a, b);
}
