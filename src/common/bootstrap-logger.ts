import type { LoggerService } from '@nestjs/common';
import type { Logger as PinoLogger } from 'pino';

const STACK = /\n\s+at /;

/**
 * Nest's own logs until the app's logger takes over (module initialisation, and a start that
 * fails): JSON lines like every other, never Nest's coloured console with a raw stack under
 * them. A stack goes into the line's `stack` field.
 */
export class BootstrapLogger implements LoggerService {
  constructor(private readonly pino: PinoLogger) {}

  log(message: unknown, context?: string): void {
    this.pino.info({ context }, String(message));
  }

  warn(message: unknown, context?: string): void {
    this.pino.warn({ context }, String(message));
  }

  debug(message: unknown, context?: string): void {
    this.pino.debug({ context }, String(message));
  }

  verbose(message: unknown, context?: string): void {
    this.pino.trace({ context }, String(message));
  }

  error(message: unknown, ...rest: unknown[]): void {
    this.pino.error(fieldsOf(rest), message instanceof Error ? message.message : String(message));
  }

  fatal(message: unknown, ...rest: unknown[]): void {
    this.pino.fatal(fieldsOf(rest), String(message));
  }
}

/** Nest passes (stack, context), (context) or (stack). */
function fieldsOf(rest: unknown[]): { context?: string; stack?: string } {
  const strings = rest.filter((value): value is string => typeof value === 'string');
  const stack = strings.find((value) => STACK.test(value));
  const context = strings.filter((value) => value !== stack).at(-1);
  return { ...(context ? { context } : {}), ...(stack ? { stack } : {}) };
}
