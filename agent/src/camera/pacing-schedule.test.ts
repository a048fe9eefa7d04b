import { describe, expect, it } from 'vitest';
import { PacingSchedule } from './pacing-schedule.ts';

describe('PacingSchedule', () => {
  it('puts slots at whole periods from the anchor, whatever the lateness of each wake-up', () => {
    const s = new PacingSchedule(10);
    s.anchor(0, 1000);
    expect(s.delayMs(0, 1000)).toBe(0);
    // Slot 1 asked for 30 ms late (a slow read): it still waits only for its own due time.
    expect(s.delayMs(1, 1030)).toBe(70);
    // Woken 20 ms late for slot 1, asking for slot 2: due at 1200, not 1100 + 20 + 100.
    expect(s.delayMs(2, 1120)).toBe(80);
  });

  it('takes a frame at once and keeps the cadence from there when more than a period behind', () => {
    const s = new PacingSchedule(10);
    s.anchor(0, 0);
    // Slot 3 was due at 300; at 450 it is 150 ms late: now, not a burst of the missed ones.
    expect(s.delayMs(3, 450)).toBe(0);
    expect(s.delayMs(4, 460)).toBe(90);
    // Up to a period late is caught up without re-anchoring.
    expect(s.delayMs(5, 700)).toBe(0);
    expect(s.delayMs(6, 701)).toBe(49);
  });

  it('resumes after a retry delay from the new anchor', () => {
    const s = new PacingSchedule(4);
    s.anchor(0, 0);
    s.anchor(7, 5000);
    expect(s.delayMs(7, 4000)).toBe(1000);
    expect(s.delayMs(8, 5000)).toBe(250);
  });

  it('refuses a rate that is not positive', () => {
    expect(() => new PacingSchedule(0)).toThrow(RangeError);
    expect(() => new PacingSchedule(Number.NaN)).toThrow(RangeError);
  });
});
