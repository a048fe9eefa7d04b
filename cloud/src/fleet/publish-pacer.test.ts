import { describe, expect, it } from 'vitest';
import { PublishPacer } from './publish-pacer.ts';

/** A pacer on a fake clock whose sleeps advance it. */
function fakePacer(ratePerSec: number, burst?: number) {
  let now = 0;
  const slept: number[] = [];
  const pacer = new PublishPacer({
    ratePerSec,
    ...(burst !== undefined ? { burst } : {}),
    nowMs: () => now,
    sleep: async (ms) => {
      slept.push(ms);
      now += ms;
    },
  });
  return {
    pacer,
    slept,
    now: () => now,
    advance: (ms: number) => {
      now += ms;
    },
  };
}

describe('PublishPacer', () => {
  it('lets a burst through at once, then paces at the rate', async () => {
    const f = fakePacer(100);
    for (let i = 0; i < 100; i++) await f.pacer.take();
    expect(f.now()).toBe(0);
    for (let i = 0; i < 500; i++) await f.pacer.take();
    // 500 beyond the burst at 100 a second: 5 s.
    expect(f.now()).toBeCloseTo(5000, 0);
  });

  it('refills over quiet time, up to the burst only', async () => {
    const f = fakePacer(10, 20);
    for (let i = 0; i < 20; i++) await f.pacer.take();
    f.advance(60_000);
    const before = f.now();
    for (let i = 0; i < 20; i++) await f.pacer.take();
    expect(f.now()).toBe(before);
    await f.pacer.take();
    expect(f.now() - before).toBeCloseTo(100, 0);
  });

  it('serves concurrent callers in order, sharing one budget', async () => {
    const f = fakePacer(2, 1);
    const order: string[] = [];
    await Promise.all(
      ['a', 'b', 'c', 'd'].map(async (name) => {
        await f.pacer.take();
        order.push(name);
      }),
    );
    expect(order).toEqual(['a', 'b', 'c', 'd']);
    // One at once, three more at two a second.
    expect(f.now()).toBeCloseTo(1500, 0);
  });

  it('refuses a rate that is not above 0', () => {
    expect(() => new PublishPacer({ ratePerSec: 0 })).toThrow(/ratePerSec/);
  });
});
