const DAY_MS = 86_400_000;

/** Day and month bucket keys (YYYY-MM-DD, YYYY-MM) in one IANA time zone. */
export class UsageCalendar {
  private readonly format?: Intl.DateTimeFormat;
  private readonly wallClock?: Intl.DateTimeFormat;

  constructor(readonly timeZone: string) {
    if (timeZone !== 'UTC') {
      this.format = new Intl.DateTimeFormat('en-CA', { timeZone, year: 'numeric', month: '2-digit', day: '2-digit' });
      this.wallClock = new Intl.DateTimeFormat('en-US', {
        timeZone,
        hourCycle: 'h23',
        year: 'numeric',
        month: 'numeric',
        day: 'numeric',
        hour: 'numeric',
        minute: 'numeric',
        second: 'numeric',
      });
    }
  }

  /** The instant the day after `at` begins, in this zone. */
  nextDayStart(at: Date): Date {
    const [year, month, day] = this.dayKey(at).split('-').map(Number);
    return this.startOf(year, month, day + 1);
  }

  /** The instant the month after `at` begins, in this zone. */
  nextMonthStart(at: Date): Date {
    const [year, month] = this.dayKey(at).split('-').map(Number);
    return this.startOf(year, month + 1, 1);
  }

  /** The instant a day key (YYYY-MM-DD) begins, in this zone. */
  dayStart(dayKey: string): Date {
    const [year, month, day] = dayKey.split('-').map(Number);
    return this.startOf(year, month, day);
  }

  /** Local midnight of a calendar date (month and day may overflow, as with Date.UTC). */
  private startOf(year: number, month: number, day: number): Date {
    const wall = Date.UTC(year, month - 1, day);
    if (!this.wallClock) return new Date(wall);
    // Shift by the zone's offset, then once more in case that crossed a DST change.
    const first = wall - this.offsetAt(wall);
    const second = wall - this.offsetAt(first);
    return new Date(second);
  }

  private offsetAt(instant: number): number {
    const parts = Object.fromEntries(this.wallClock!.formatToParts(new Date(instant)).map((p) => [p.type, p.value]));
    const asUtc = Date.UTC(+parts.year, +parts.month - 1, +parts.day, +parts.hour, +parts.minute, +parts.second);
    return asUtc - Math.floor(instant / 1000) * 1000;
  }

  dayKey(at: Date): string {
    if (!this.format) return at.toISOString().slice(0, 10);
    const parts = this.format.formatToParts(at);
    const part = (type: string) => parts.find((p) => p.type === type)!.value;
    return `${part('year')}-${part('month')}-${part('day')}`;
  }

  monthKey(at: Date): string {
    return this.dayKey(at).slice(0, 7);
  }

  /** Day key of the oldest day still kept when `retentionDays` days (including today) are retained. */
  retentionCutoffDay(now: Date, retentionDays: number): string {
    return this.dayKey(new Date(now.getTime() - (retentionDays - 1) * DAY_MS));
  }
}
