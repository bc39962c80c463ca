import { UsageCalendar } from '../token-tracking/usage-calendar';
import { lastDays, resolvePeriod, shiftDay } from './usage-period';

describe('usage periods', () => {
  const utc = new UsageCalendar('UTC');
  const now = new Date('2026-03-02T10:00:00Z');

  it('shifts calendar days across month, year and leap-day boundaries', () => {
    expect(shiftDay('2026-03-01', -1)).toBe('2026-02-28');
    expect(shiftDay('2028-03-01', -1)).toBe('2028-02-29');
    expect(shiftDay('2026-12-31', 1)).toBe('2027-01-01');
  });

  it('lists the last N days ending today, oldest first', () => {
    expect(lastDays(utc, now, 3)).toEqual(['2026-02-28', '2026-03-01', '2026-03-02']);
  });

  it('resolves each period to the rollup documents that answer it', () => {
    expect(resolvePeriod('today', utc, now)).toMatchObject({ from: '2026-03-02', to: '2026-03-02', granularity: 'day', keys: ['2026-03-02'] });
    expect(resolvePeriod('week', utc, now)).toMatchObject({ from: '2026-02-24', granularity: 'day' });
    expect(resolvePeriod('week', utc, now).keys).toHaveLength(7);
    expect(resolvePeriod('month', utc, now)).toMatchObject({ from: '2026-03-01', granularity: 'month', keys: ['2026-03'] });
    expect(resolvePeriod('year', utc, now)).toMatchObject({ from: '2026-01-01', granularity: 'month', keys: ['2026-01', '2026-02', '2026-03'] });
    expect(resolvePeriod('all', utc, now)).toMatchObject({ from: null, granularity: 'month' });
    expect(resolvePeriod('all', utc, now).keys).toBeUndefined();
  });

  it('uses the local calendar of USAGE_TIMEZONE', () => {
    const auckland = new UsageCalendar('Pacific/Auckland');
    // 2026-03-31T12:00Z is already April 1st in Auckland.
    expect(resolvePeriod('month', auckland, new Date('2026-03-31T12:00:00Z'))).toMatchObject({ from: '2026-04-01', to: '2026-04-01', keys: ['2026-04'] });
  });
});
