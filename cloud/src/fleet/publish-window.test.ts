import { describe, expect, it } from 'vitest';
import { publishWindowed } from './publish-window.ts';

/** A publish whose completion the test controls. */
function controlled() {
  const started: number[] = [];
  const finish = new Map<number, (err?: Error) => void>();
  let running = 0;
  let peak = 0;
  const publish = (n: number) =>
    new Promise<void>((resolve, reject) => {
      started.push(n);
      running++;
      peak = Math.max(peak, running);
      finish.set(n, (err) => {
        running--;
        if (err) reject(err);
        else resolve();
      });
    });
  return { started, finish, publish, peak: () => peak };
}

async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await new Promise((resolve) => setImmediate(resolve));
}

describe('publishWindowed', () => {
  it('keeps at most maxInFlight publishes open and starts the next as one finishes, in order', async () => {
    const c = controlled();
    const done = publishWindowed([1, 2, 3, 4, 5, 6, 7], 3, c.publish);
    await settle();
    expect(c.started).toEqual([1, 2, 3]);
    c.finish.get(2)?.();
    await settle();
    expect(c.started).toEqual([1, 2, 3, 4]);
    for (const n of [1, 3, 4, 5, 6, 7]) {
      c.finish.get(n)?.();
      await settle();
    }
    await done;
    expect(c.started).toEqual([1, 2, 3, 4, 5, 6, 7]);
    expect(c.peak()).toBe(3);
  });

  it('stops starting after a failure and rejects with it once the open ones settle', async () => {
    const c = controlled();
    const done = publishWindowed([1, 2, 3, 4, 5], 2, c.publish);
    const outcome = done.then(
      () => 'resolved',
      (err: Error) => err.message,
    );
    await settle();
    c.finish.get(1)?.(new Error('no PUBACK'));
    await settle();
    c.finish.get(2)?.();
    expect(await outcome).toBe('no PUBACK');
    expect(c.started).toEqual([1, 2]);
  });

  it('starts each publish only after its beforeEach turn (a pacer)', async () => {
    const c = controlled();
    const turns: (() => void)[] = [];
    const done = publishWindowed([1, 2, 3], 3, c.publish, () => new Promise((r) => turns.push(r)));
    await settle();
    expect(c.started).toEqual([]);
    turns.shift()?.();
    await settle();
    expect(c.started).toEqual([1]);
    turns.shift()?.();
    await settle();
    expect(c.started).toEqual([1, 2]);
    // Finished publishes free the window, but the third waits for its turn.
    for (const n of [1, 2]) c.finish.get(n)?.();
    await settle();
    expect(c.started).toEqual([1, 2]);
    expect(turns).toHaveLength(1);
    turns.shift()?.();
    await settle();
    c.finish.get(3)?.();
    await done;
    expect(c.started).toEqual([1, 2, 3]);
  });

  it('refuses a window that is not a positive integer', async () => {
    await expect(publishWindowed([1], 0, async () => undefined)).rejects.toThrow(RangeError);
  });
});
