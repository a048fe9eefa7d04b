import { describe, expect, it } from 'vitest';
import type { Clock } from './clock.ts';
import { SerialRunner } from './serial-runner.ts';

/** A clock whose timer fires only when the test calls fire(). */
class FakeClock implements Clock {
  readonly intervals: { fn: () => void; ms: number; handle: number }[] = [];
  readonly cleared: unknown[] = [];
  now = () => 0;
  setInterval = (fn: () => void, ms: number) => {
    const handle = this.intervals.length + 1;
    this.intervals.push({ fn, ms, handle });
    return handle;
  };
  clearInterval = (handle: unknown) => {
    this.cleared.push(handle);
  };
  fire(): void {
    for (const i of this.intervals) if (!this.cleared.includes(i.handle)) i.fn();
  }
}

/** A promise the test resolves or rejects by hand. */
interface Deferred<T> {
  promise: Promise<T>;
  resolve: (value: T) => void;
  reject: (err: unknown) => void;
}

function deferred<T = void>(): Deferred<T> {
  let resolve!: (value: T) => void;
  let reject!: (err: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/** A tick that records each run and, when `gate` is set, waits for the test to let it end. */
function recordingTick() {
  const state = {
    runs: 0,
    gate: undefined as Deferred<void> | undefined,
    started: deferred(),
  };
  const tick = async () => {
    state.runs++;
    state.started.resolve();
    if (state.gate !== undefined) await state.gate.promise;
  };
  return { state, tick };
}

describe('SerialRunner', () => {
  it('starts one timer at its tick interval and asks for a first tick at once', async () => {
    const clock = new FakeClock();
    const { state, tick } = recordingTick();
    const runner = new SerialRunner(clock, 250, tick);
    runner.start();
    runner.start();
    expect(clock.intervals.map((i) => i.ms)).toEqual([250]);
    await runner.idle();
    expect(state.runs).toBe(1);
    clock.fire();
    await runner.idle();
    expect(state.runs).toBe(2);
    await runner.close();
  });

  it('lets at most one tick wait behind the running one', async () => {
    const clock = new FakeClock();
    const { state, tick } = recordingTick();
    const runner = new SerialRunner(clock, 250, tick);
    state.gate = deferred();
    runner.kick();
    await state.started.promise;
    // The first tick runs (and no longer counts as queued): three more asks queue one tick.
    runner.kick();
    runner.kick();
    runner.kick();
    state.gate.resolve();
    await runner.idle();
    expect(state.runs).toBe(2);
    // Once that one ran, a new ask queues a new tick.
    runner.kick();
    await runner.idle();
    expect(state.runs).toBe(3);
    await runner.close();
  });

  it('runs other work between ticks, one at a time and in order, with its result or error', async () => {
    const clock = new FakeClock();
    const { state, tick } = recordingTick();
    const runner = new SerialRunner(clock, 250, tick);
    state.gate = deferred();
    runner.kick();
    await state.started.promise;
    const order: string[] = [];
    const first = runner.exclusive(async () => {
      order.push(`first after ${state.runs} tick`);
      return 42;
    });
    const failing = runner.exclusive(async () => {
      order.push('failing');
      throw new Error('boom');
    });
    const after = runner.exclusive(async () => {
      order.push('after');
      return 'ok';
    });
    // Nothing ran while the tick held the runner.
    await Promise.resolve();
    expect(order).toEqual([]);
    state.gate.resolve();
    await expect(first).resolves.toBe(42);
    await expect(failing).rejects.toThrow('boom');
    // A failed piece of work does not stop the work queued behind it.
    await expect(after).resolves.toBe('ok');
    expect(order).toEqual(['first after 1 tick', 'failing', 'after']);
    await runner.close();
  });

  it('idle() also waits for work queued while it waited', async () => {
    const runner = new SerialRunner(new FakeClock(), 250, async () => undefined);
    const gate = deferred();
    const done: string[] = [];
    void runner.exclusive(async () => {
      await gate.promise;
      // Queued while idle() waits for this one.
      void runner.exclusive(async () => {
        const inner = deferred();
        setImmediate(() => inner.resolve());
        await inner.promise;
        done.push('second');
      });
      done.push('first');
    });
    const idle = runner.idle();
    gate.resolve();
    await idle;
    expect(done).toEqual(['first', 'second']);
  });

  it('close() stops the timer, waits for the running tick and is idempotent; no tick after it', async () => {
    const clock = new FakeClock();
    const { state, tick } = recordingTick();
    const runner = new SerialRunner(clock, 250, tick);
    state.gate = deferred();
    runner.start();
    await state.started.promise;
    expect(runner.closed).toBe(false);
    let closed = false;
    const closing = runner.close().then(() => {
      closed = true;
    });
    expect(runner.closed).toBe(true);
    expect(clock.cleared).toEqual([1]);
    await Promise.resolve();
    expect(closed).toBe(false);
    state.gate.resolve();
    await closing;
    expect(closed).toBe(true);
    runner.kick();
    clock.intervals[0]?.fn();
    runner.start();
    await runner.idle();
    expect(state.runs).toBe(1);
    expect(clock.intervals).toHaveLength(1);
    await runner.close();
    expect(clock.cleared).toEqual([1]);
  });

  it('start() after close() starts no timer', async () => {
    const clock = new FakeClock();
    const runner = new SerialRunner(clock, 250, async () => undefined);
    await runner.close();
    runner.start();
    expect(clock.intervals).toHaveLength(0);
    expect(clock.cleared).toEqual([]);
  });
});
