import { describe, expect, it } from 'vitest';
import { LatencyWindow } from './latency-window.ts';

describe('LatencyWindow', () => {
  it('keeps the last N samples, overwriting the oldest first', () => {
    const w = new LatencyWindow(3);
    for (const ms of [1, 2, 3, 4]) w.add(ms);
    // 1 is gone: 2, 3, 4 remain.
    expect(w.size).toBe(3);
    expect(w.summary()).toEqual({ p50: 3, p99: 4, max: 4 });
    w.add(1);
    w.add(1);
    // 2 and 3 were the oldest: 4, 1, 1 remain.
    expect(w.summary()).toEqual({ p50: 1, p99: 4, max: 4 });
    w.add(0.5);
    // Then 4: 1, 1, 0.5.
    expect(w.summary()).toEqual({ p50: 1, p99: 1, max: 1 });
  });

  it('orders samples by value, not as text, and rounds to hundredths', () => {
    const w = new LatencyWindow();
    for (const ms of [9, 100, 10.004]) w.add(ms);
    expect(w.summary()).toEqual({ p50: 10, p99: 100, max: 100 });
  });

  it('is all zeros when empty and after a reset, and fills again from the start', () => {
    const w = new LatencyWindow(3);
    expect(w.summary()).toEqual({ p50: 0, p99: 0, max: 0 });
    for (const ms of [5, 6, 7, 8]) w.add(ms);
    w.reset();
    expect(w.size).toBe(0);
    expect(w.summary()).toEqual({ p50: 0, p99: 0, max: 0 });
    // Refilled from slot 0: the fourth sample overwrites the first (1), not the second (100).
    for (const ms of [1, 100, 50, 60]) w.add(ms);
    expect(w.size).toBe(3);
    expect(w.summary()).toEqual({ p50: 60, p99: 100, max: 100 });
  });
});
