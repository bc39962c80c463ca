import * as dotenv from 'dotenv';
import { existsSync, readFileSync } from 'node:fs';
import { AppConfig, ConfigOverrides, validateConfig } from './app-config';

/**
 * Reads `.env` (when present) under the real environment, applies overrides
 * (used by tests and benchmarks) and validates the result once.
 */
export function loadConfig(overrides: ConfigOverrides = {}, envFile = '.env'): AppConfig {
  const fromFile = existsSync(envFile) ? dotenv.parse(readFileSync(envFile)) : {};
  return validateConfig({ ...fromFile, ...process.env, ...overrides });
}
