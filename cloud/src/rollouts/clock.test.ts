import { afterEach, describe, expect, it, vi } from 'vitest';
import { systemClock } from './clock.ts';

afterEach(() => {
  vi.useRealTimers();
});

describe('systemClock', () => {
  it("reads the time and runs an interval on Node's timers, until cleared", () => {
    vi.useFakeTimers({ now: Date.parse('2026-01-01T00:00:00Z') });
    expect(systemClock.now()).toBe(Date.parse('2026-01-01T00:00:00Z'));
    const fired: number[] = [];
    const handle = systemClock.setInterval(() => fired.push(systemClock.now()), 250);
    vi.advanceTimersByTime(600);
    expect(fired).toEqual([250, 500].map((ms) => Date.parse('2026-01-01T00:00:00Z') + ms));
    systemClock.clearInterval(handle);
    vi.advanceTimersByTime(1000);
    expect(fired).toHaveLength(2);
  });
});
