import { describe, expect, it } from 'vitest';
import { reconnectDelayMs } from './device-link.ts';

describe('reconnect backoff', () => {
  it('doubles from the first delay up to the cap, jittered to 50-100 %', () => {
    const top = [0, 1, 2, 3, 6, 7, 20].map((a) => reconnectDelayMs(a, 1000, 60_000, 1));
    expect(top).toEqual([1000, 2000, 4000, 8000, 60_000, 60_000, 60_000]);
    expect(reconnectDelayMs(3, 1000, 60_000, 0)).toBe(4000);
    expect(reconnectDelayMs(3, 1000, 60_000, 0.5)).toBe(6000);
  });
});
