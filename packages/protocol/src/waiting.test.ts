import { describe, expect, it } from 'vitest';
import { Backoff, backoffDelayMs, backoffProblems, withDeadline } from './waiting.ts';

describe('backoffDelayMs', () => {
  it('doubles from the first delay up to the cap, jittered to 50-100 %', () => {
    const top = [0, 1, 2, 3, 6, 7, 20, 5000].map((a) => backoffDelayMs(a, 1000, 60_000, 1));
    expect(top).toEqual([1000, 2000, 4000, 8000, 60_000, 60_000, 60_000, 60_000]);
    expect(backoffDelayMs(3, 1000, 60_000, 0)).toBe(4000);
    expect(backoffDelayMs(3, 1000, 60_000, 0.5)).toBe(6000);
  });

  it('grows by the given factor and randomizes the given share of each delay', () => {
    expect([0, 1, 2, 3, 4].map((a) => backoffDelayMs(a, 100, 5000, 1, { factor: 3 }))).toEqual([
      100, 300, 900, 2700, 5000,
    ]);
    expect(backoffDelayMs(2, 100, 5000, 0, { factor: 3, jitter: 0 })).toBe(900);
    expect(backoffDelayMs(2, 100, 5000, 0, { factor: 3, jitter: 1 })).toBe(0);
    expect(backoffDelayMs(2, 100, 5000, 0, { factor: 3, jitter: 0.2 })).toBe(720);
  });

  it('reaches the cap with a slow factor, and stays there (a number) after a long outage', () => {
    // 1.1^43 > 60: a slow factor needs more than 30 steps from 500 ms to 30 s.
    expect(backoffDelayMs(43, 500, 30_000, 1, { factor: 1.1 })).toBe(30_000);
    expect(backoffDelayMs(40, 500, 30_000, 1, { factor: 1.1 })).toBeLessThan(30_000);
    for (const attempt of [64, 65, 1e6, Number.MAX_SAFE_INTEGER]) {
      expect(backoffDelayMs(attempt, 1, 2 ** 40, 1)).toBe(2 ** 40);
      expect(backoffDelayMs(attempt, 500, 30_000, 1, { factor: 1e6 })).toBe(30_000);
    }
  });
});

describe('Backoff', () => {
  it('doubles from 500 ms to 30 s by default and counts its attempts', () => {
    const b = new Backoff({ random: () => 0 });
    const delays = Array.from({ length: 9 }, () => b.next());
    expect(delays).toEqual([500, 1000, 2000, 4000, 8000, 16_000, 30_000, 30_000, 30_000]);
    expect(b.attempt).toBe(9);
  });

  it('starts again from the first delay after reset()', () => {
    const b = new Backoff({ initialMs: 20, maxMs: 80, random: () => 0 });
    expect([b.next(), b.next(), b.next(), b.next()]).toEqual([20, 40, 80, 80]);
    b.reset();
    expect(b.attempt).toBe(0);
    expect([b.next(), b.next()]).toEqual([20, 40]);
  });

  it('draws each delay from [d * (1 - jitter), d]: random() 0 is the full delay', () => {
    const draws = [0, 0.5, 0.75];
    const at = (options: { jitter?: number; factor?: number }) =>
      draws.map((r) => new Backoff({ initialMs: 1000, maxMs: 8000, ...options, random: () => r }));
    expect(at({}).map((b) => b.next())).toEqual([1000, 750, 625]);
    expect(at({ jitter: 0 }).map((b) => b.next())).toEqual([1000, 1000, 1000]);
    const second = at({ jitter: 1, factor: 4 }).map((b) => [b.next(), b.next()][1]);
    expect(second).toEqual([4000, 2000, 1000]);
    const b = new Backoff({ initialMs: 1000, maxMs: 8000 });
    for (let i = 0; i < 200; i++) {
      const d = Math.min(8000, 1000 * 2 ** Math.min(i, 3));
      const delay = b.next();
      expect(delay).toBeGreaterThanOrEqual(d / 2);
      expect(delay).toBeLessThanOrEqual(d);
    }
  });
});

describe('backoffProblems', () => {
  it('accepts the defaults and sound options', () => {
    expect(backoffProblems({})).toEqual([]);
    expect(backoffProblems({ initialMs: 1, maxMs: 1, factor: 1, jitter: 0 })).toEqual([]);
    expect(backoffProblems({ initialMs: 10, maxMs: 10_000, factor: 1.5, jitter: 1 })).toEqual([]);
  });

  it('reports every problem at once, under the given prefix', () => {
    expect(
      backoffProblems(
        { initialMs: 0, maxMs: Infinity, factor: 0.5, jitter: 1.5 },
        'camera.backoff',
      ),
    ).toEqual([
      'camera.backoff.initialMs must be > 0',
      'camera.backoff.maxMs must be >= initialMs',
      'camera.backoff.factor must be >= 1',
      'camera.backoff.jitter must be in [0, 1]',
    ]);
    expect(backoffProblems({ initialMs: 1000, maxMs: 999 })).toEqual([
      'backoff.maxMs must be >= initialMs',
    ]);
    expect(backoffProblems({ initialMs: NaN, factor: NaN, jitter: NaN })).toEqual([
      'backoff.initialMs must be > 0',
      'backoff.maxMs must be >= initialMs',
      'backoff.factor must be >= 1',
      'backoff.jitter must be in [0, 1]',
    ]);
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
