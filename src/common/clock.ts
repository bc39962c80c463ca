import { Injectable } from '@nestjs/common';

/**
 * The service's notion of now, for window and reservation arithmetic. Tests move it
 * forward with advance() to cross a 24-hour window against real Redis.
 */
@Injectable()
export class Clock {
  private offsetMs = 0;

  now(): number {
    return Date.now() + this.offsetMs;
  }

  advance(ms: number): void {
    this.offsetMs += ms;
  }
}
