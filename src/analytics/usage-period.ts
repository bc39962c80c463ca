import { UsageCalendar } from '../token-tracking/usage-calendar';

export const PERIODS = ['today', 'week', 'month', 'year', 'all'] as const;
export type Period = (typeof PERIODS)[number];

/**
 * The rollup documents that answer a period: day documents for today and the last 7 days,
 * month documents for the current month, the current year and all time.
 */
export interface PeriodRange {
  period: Period;
  /** First day covered (null for all time). */
  from: string | null;
  /** Last day covered: today. */
  to: string;
  granularity: 'day' | 'month';
  /** Period keys to read; undefined = every month document. */
  keys?: string[];
}

const DAY_MS = 86_400_000;

/** Calendar arithmetic on a YYYY-MM-DD key (time-zone independent: the key already is local). */
export function shiftDay(day: string, days: number): string {
  const [year, month, date] = day.split('-').map(Number);
  return new Date(Date.UTC(year, month - 1, date) + days * DAY_MS).toISOString().slice(0, 10);
}

/** The `count` day keys ending with today's, oldest first. */
export function lastDays(calendar: UsageCalendar, now: Date, count: number): string[] {
  const today = calendar.dayKey(now);
  return Array.from({ length: count }, (_, index) => shiftDay(today, index - count + 1));
}

export function resolvePeriod(period: Period, calendar: UsageCalendar, now: Date): PeriodRange {
  const today = calendar.dayKey(now);
  const month = today.slice(0, 7);
  switch (period) {
    case 'today':
      return { period, from: today, to: today, granularity: 'day', keys: [today] };
    case 'week': {
      const keys = lastDays(calendar, now, 7);
      return { period, from: keys[0], to: today, granularity: 'day', keys };
    }
    case 'month':
      return { period, from: `${month}-01`, to: today, granularity: 'month', keys: [month] };
    case 'year': {
      const year = today.slice(0, 4);
      const keys = Array.from({ length: Number(today.slice(5, 7)) }, (_, index) => `${year}-${String(index + 1).padStart(2, '0')}`);
      return { period, from: `${year}-01-01`, to: today, granularity: 'month', keys };
    }
    case 'all':
      return { period, from: null, to: today, granularity: 'month' };
  }
}
