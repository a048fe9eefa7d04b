import { describe, expect, it } from 'vitest';
import { runLimiter } from './run-limiter.ts';

describe('runLimiter', () => {
  it('runs at most maxInFlight calls at once, the rest in order, failures included', async () => {
    const limit = runLimiter(2);
    let inFlight = 0;
    let most = 0;
    const started: number[] = [];
    const releases: (() => void)[] = [];
    const calls = Array.from({ length: 6 }, (_, i) =>
      limit(async () => {
        started.push(i);
        inFlight++;
        most = Math.max(most, inFlight);
        await new Promise<void>((resolve) => releases.push(resolve));
        inFlight--;
        if (i === 1) throw new Error('run 1 failed');
        return i;
      }),
    );
    const settled = Promise.allSettled(calls);
    for (let k = 0; k < 6; k++) {
      await new Promise((resolve) => setImmediate(resolve));
      releases.shift()?.();
    }
    const results = await settled;
    expect(most).toBe(2);
    expect(started).toEqual([0, 1, 2, 3, 4, 5]);
    expect(results.map((r) => r.status)).toEqual([
      'fulfilled',
      'rejected',
      'fulfilled',
      'fulfilled',
      'fulfilled',
      'fulfilled',
    ]);
    // Free again: a later call starts at once.
    expect(await limit(async () => 'later')).toBe('later');
  });

  it('refuses a limit below one', () => {
    expect(() => runLimiter(0)).toThrow(RangeError);
  });
});
