import pino from 'pino';
import { describe, expect, it } from 'vitest';
import type { DesiredState } from '@linesight/protocol';
import { DesiredPublishQueue, type DesiredPublishQueueOptions } from './desired-publish-queue.ts';

const silent = pino({ level: 'silent' });

function doc(deviceId: string, revision: number): DesiredState {
  return { deviceId, revision } as unknown as DesiredState;
}

/** A publish whose PUBACKs the test hands out. */
function gatedLink() {
  const started: DesiredState[] = [];
  const acks: { doc: DesiredState; ok: () => void; fail: (err: Error) => void }[] = [];
  const waiters: (() => void)[] = [];
  return {
    started,
    publish: (d: DesiredState) =>
      new Promise<void>((ok, fail) => {
        started.push(d);
        acks.push({ doc: d, ok, fail });
        for (const w of waiters.splice(0)) w();
      }),
    /** Resolves once `n` publishes have started in all. */
    async startedAtLeast(n: number) {
      while (started.length < n) await new Promise<void>((r) => waiters.push(r));
    },
    ackAll() {
      for (const a of acks.splice(0)) a.ok();
    },
    failAll(err: Error) {
      for (const a of acks.splice(0)) a.fail(err);
    },
  };
}

function queue(
  options: Partial<DesiredPublishQueueOptions> & Pick<DesiredPublishQueueOptions, 'publish'>,
) {
  return new DesiredPublishQueue({ maxInFlight: 4, logger: silent, ...options });
}

describe('DesiredPublishQueue', () => {
  it('returns at once, publishes in order with a bounded window, and says which devices are pending', async () => {
    const link = gatedLink();
    const q = queue({ publish: link.publish });
    const ids = Array.from({ length: 10 }, (_, i) => `d${i}`);
    q.enqueue(ids.map((id) => doc(id, 1)));
    expect(q.countPending(ids)).toBe(10);
    await link.startedAtLeast(4);
    // The window is full: nothing more starts until a PUBACK comes.
    await Promise.resolve();
    expect(link.started).toHaveLength(4);
    expect(q.stats()).toMatchObject({ waiting: 6, inFlight: 4, published: 0 });
    while (link.started.length < 10) {
      link.ackAll();
      await link.startedAtLeast(Math.min(10, link.started.length + 1));
    }
    link.ackAll();
    await q.idle();
    expect(link.started.map((d) => d.deviceId)).toEqual(ids);
    expect(q.countPending(ids)).toBe(0);
    expect(q.stats()).toMatchObject({ waiting: 0, inFlight: 0, published: 10, failed: 0 });
    await q.close();
  });

  it('sends a waiting device only its newest document, in the place of the first', async () => {
    const link = gatedLink();
    const q = queue({ publish: link.publish, maxInFlight: 1 });
    q.enqueue([doc('a', 1), doc('b', 1), doc('c', 1)]);
    await link.startedAtLeast(1);
    // A rollback queued while the wave still goes out.
    q.enqueue([doc('b', 2), doc('c', 2), doc('a', 2)]);
    for (let n = 1; n < 4; n++) {
      link.ackAll();
      await link.startedAtLeast(n + 1);
    }
    link.ackAll();
    await q.idle();
    expect(link.started.map((d) => `${d.deviceId}${d.revision}`)).toEqual(['a1', 'b2', 'c2', 'a2']);
    await q.close();
  });

  it('queues a failed publish again (the stored document) after a backoff, and loses none', async () => {
    const link = gatedLink();
    const slept: number[] = [];
    const stored = new Map([['a', doc('a', 7)]]);
    const q = queue({
      publish: link.publish,
      maxInFlight: 2,
      latest: (id) => stored.get(id),
      sleep: async (ms) => {
        slept.push(ms);
      },
      random: () => 1,
      minRetryDelayMs: 100,
    });
    q.enqueue([doc('a', 6), doc('b', 1)]);
    await link.startedAtLeast(2);
    link.failAll(new Error('broker gone'));
    await link.startedAtLeast(4);
    // b failed after a: both go again, a with what is stored for it now.
    expect(link.started.slice(2).map((d) => `${d.deviceId}${d.revision}`)).toEqual(['a7', 'b1']);
    expect(slept).toEqual([200, 200]);
    expect(q.countPending(['a', 'b'])).toBe(2);
    link.ackAll();
    await q.idle();
    expect(q.countPending(['a', 'b'])).toBe(0);
    expect(q.stats()).toMatchObject({ published: 2, failed: 2 });
    await q.close();
  });

  it('counts a publish without a PUBACK in time as failed and sends it again', async () => {
    let calls = 0;
    const q = queue({
      publish: () => (++calls === 1 ? new Promise<void>(() => undefined) : Promise.resolve()),
      publishTimeoutMs: 5,
      sleep: async () => undefined,
    });
    q.enqueue([doc('a', 1)]);
    await q.idle();
    expect(calls).toBe(2);
    expect(q.stats()).toMatchObject({ published: 1, failed: 1 });
    await q.close();
  });

  it('closes without waiting for a publish that never ends, and starts nothing after', async () => {
    const link = gatedLink();
    const q = queue({ publish: link.publish, maxInFlight: 1 });
    q.enqueue([doc('a', 1), doc('b', 1)]);
    await link.startedAtLeast(1);
    await q.close();
    await q.close();
    q.enqueue([doc('c', 1)]);
    link.ackAll();
    await q.idle();
    expect(link.started.map((d) => d.deviceId)).toEqual(['a']);
  });

  it('refuses a window below 1', () => {
    expect(() => queue({ publish: async () => undefined, maxInFlight: 0 })).toThrow(RangeError);
  });
});
