import { describe, expect, it } from 'vitest';
import { backoffDelayMs, withDeadline } from './waiting.ts';

describe('backoffDelayMs', () => {
  it('doubles from the first delay up to the cap, jittered to 50-100 %', () => {
    const top = [0, 1, 2, 3, 6, 7, 20, 5000].map((a) => backoffDelayMs(a, 1000, 60_000, 1));
    expect(top).toEqual([1000, 2000, 4000, 8000, 60_000, 60_000, 60_000, 60_000]);
    expect(backoffDelayMs(3, 1000, 60_000, 0)).toBe(4000);
    expect(backoffDelayMs(3, 1000, 60_000, 0.5)).toBe(6000);
  });
});

describe('withDeadline', () => {
  it('settles as the promise does, or rejects naming what it waited for', async () => {
    await expect(withDeadline(Promise.resolve(7), 1000)).resolves.toBe(7);
    await expect(withDeadline(Promise.reject(new Error('no')), 1000)).rejects.toThrow('no');
    await expect(withDeadline(new Promise(() => undefined), 10, 'no PUBACK')).rejects.toThrow(
      'no PUBACK within 10 ms',
    );
  });
});
