import { UsageCalendar } from './usage-calendar';

describe(UsageCalendar.name, () => {
  it('uses UTC days by default', () => {
    const calendar = new UsageCalendar('UTC');
    expect(calendar.dayKey(new Date('2026-11-23T23:59:59.999Z'))).toBe('2026-11-23');
    expect(calendar.dayKey(new Date('2026-11-24T00:00:00.000Z'))).toBe('2026-11-24');
    expect(calendar.monthKey(new Date('2026-12-31T23:00:00Z'))).toBe('2026-12');
  });

  it('moves bucket boundaries to the configured zone', () => {
    const johannesburg = new UsageCalendar('Africa/Johannesburg'); // UTC+2, no DST
    expect(johannesburg.dayKey(new Date('2026-11-23T22:30:00Z'))).toBe('2026-11-24');
    expect(johannesburg.monthKey(new Date('2026-11-30T22:30:00Z'))).toBe('2026-12');
    const losAngeles = new UsageCalendar('America/Los_Angeles'); // UTC-8 in November
    expect(losAngeles.dayKey(new Date('2026-11-24T07:59:00Z'))).toBe('2026-11-23');
    expect(losAngeles.dayKey(new Date('2026-11-24T08:00:00Z'))).toBe('2026-11-24');
  });

  it('handles DST transitions by wall-clock date', () => {
    const berlin = new UsageCalendar('Europe/Berlin');
    expect(berlin.dayKey(new Date('2026-03-28T23:30:00Z'))).toBe('2026-03-29'); // UTC+1 before the switch
    expect(berlin.dayKey(new Date('2026-03-29T22:30:00Z'))).toBe('2026-03-30'); // UTC+2 after it
  });

  it('computes the retention cutoff inclusive of today', () => {
    const calendar = new UsageCalendar('UTC');
    const now = new Date('2026-11-23T12:00:00Z');
    expect(calendar.retentionCutoffDay(now, 1)).toBe('2026-11-23');
    expect(calendar.retentionCutoffDay(now, 400)).toBe('2025-10-20');
  });

  it('finds the next local midnight and month start', () => {
    const utc = new UsageCalendar('UTC');
    expect(utc.nextDayStart(new Date('2026-11-23T10:00:00Z')).toISOString()).toBe('2026-11-24T00:00:00.000Z');
    expect(utc.nextMonthStart(new Date('2026-12-31T10:00:00Z')).toISOString()).toBe('2027-01-01T00:00:00.000Z');
    const johannesburg = new UsageCalendar('Africa/Johannesburg');
    expect(johannesburg.nextDayStart(new Date('2026-11-23T10:00:00Z')).toISOString()).toBe('2026-11-23T22:00:00.000Z');
    expect(johannesburg.nextMonthStart(new Date('2026-11-30T23:00:00Z')).toISOString()).toBe('2026-12-31T22:00:00.000Z');
    const berlin = new UsageCalendar('Europe/Berlin');
    // The night of the spring-forward switch: midnight is still at UTC+1.
    expect(berlin.nextDayStart(new Date('2026-03-28T12:00:00Z')).toISOString()).toBe('2026-03-28T23:00:00.000Z');
    expect(berlin.nextDayStart(new Date('2026-03-29T12:00:00Z')).toISOString()).toBe('2026-03-29T22:00:00.000Z');
  });
});
