import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import type { AppConfig } from '../config/app-config';
import { generateApiKey, hashApiKey } from './api-key';
import type { Principal } from './principal';

export const BOOTSTRAP_ADMIN_KEY = Symbol('BOOTSTRAP_ADMIN_KEY');

/**
 * The admin key that needs no api_keys document: ADMIN_API_KEY, or on embedded defaults a
 * development key kept in DEV_ADMIN_KEY_FILE.
 */
export interface BootstrapAdminKey {
  key: string;
  /** config: ADMIN_API_KEY; created: a development key made at this start; file: one made at an earlier start. */
  source: 'config' | 'created' | 'file';
  /** Where a development key is kept (absolute); undefined for ADMIN_API_KEY or when it could not be written. */
  file?: string;
  principal: Principal;
}

/** Why no key was made, for the start-up warning. */
export type NoBootstrapAdminKey = { reason: 'auth-disabled' | 'external-database' | 'production' };

type KeyConfig = Pick<AppConfig, 'ADMIN_API_KEY' | 'AUTH_DISABLED' | 'MONGODB_URI' | 'NODE_ENV' | 'DEV_ADMIN_KEY_FILE'>;

const MIN_KEY_LENGTH = 16;

/**
 * Every bootstrap key counts requests under its own id, derived from the key: two deployments
 * with different keys on one Redis must not share a rate-limit budget.
 */
export function bootstrapPrincipal(key: string): Principal {
  return Object.freeze({ keyId: `bootstrap-admin:${hashApiKey(key).slice(0, 16)}`, role: 'admin' as const });
}

/**
 * ADMIN_API_KEY when set. Otherwise, only on embedded defaults (no MONGODB_URI, not production),
 * a development key: read from DEV_ADMIN_KEY_FILE, or made and written there (mode 0600) so a
 * restart keeps it. Against an external MongoDB no key is ever invented.
 */
export function resolveBootstrapAdminKey(config: KeyConfig): BootstrapAdminKey | NoBootstrapAdminKey {
  if (config.ADMIN_API_KEY) return { key: config.ADMIN_API_KEY, source: 'config', principal: bootstrapPrincipal(config.ADMIN_API_KEY) };
  if (config.AUTH_DISABLED) return { reason: 'auth-disabled' };
  if (config.MONGODB_URI) return { reason: 'external-database' };
  if (config.NODE_ENV === 'production') return { reason: 'production' };

  const file = resolve(config.DEV_ADMIN_KEY_FILE);
  const stored = existsSync(file) ? readFileSync(file, 'utf8').trim() : '';
  if (stored.length >= MIN_KEY_LENGTH && !/\s/.test(stored)) {
    return { key: stored, source: 'file', file, principal: bootstrapPrincipal(stored) };
  }
  const { key } = generateApiKey('admin');
  let written: string | undefined;
  try {
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, `${key}\n`, { mode: 0o600 });
    chmodSync(file, 0o600);
    written = file;
  } catch {
    // A read-only checkout still gets a working key, for this run only.
  }
  return { key, source: 'created', file: written, principal: bootstrapPrincipal(key) };
}

export function isBootstrapAdminKey(value: BootstrapAdminKey | NoBootstrapAdminKey): value is BootstrapAdminKey {
  return 'key' in value;
}
