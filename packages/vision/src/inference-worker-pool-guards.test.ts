import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';

// The pool's bookkeeping with stand-in workers and fake timers: which worker a take()
// hands out, when a spare starts and what close() stops. inference-worker-pool.test.ts
// runs the same pool with real threads.
const workers = vi.hoisted(() => {
  class FakeWorker {
    dead = false;
    closes = 0;
    readonly exited: Promise<void>;
    #exit!: () => void;
    constructor() {
      this.exited = new Promise((resolve) => {
        this.#exit = resolve;
      });
      started.push(this);
    }
    /** The thread dies on its own (a crash). */
    crash(): void {
      this.dead = true;
      this.#exit();
    }
    close(): Promise<void> {
      this.closes++;
      this.crash();
      return Promise.resolve();
    }
  }
  const started: FakeWorker[] = [];
  return { FakeWorker, started };
});

vi.mock('./inference-worker.ts', () => ({ InferenceWorker: workers.FakeWorker }));

const { InferenceWorkerPool } = await import('./inference-worker-pool.ts');
const { started } = workers;
type FakeWorker = InstanceType<typeof workers.FakeWorker>;

/** What the pool handed out, seen as the stand-in it is. */
function fake(worker: unknown): FakeWorker {
  expect(worker).toBeInstanceOf(workers.FakeWorker);
  return worker as FakeWorker;
}

/** Lets the exit handlers (promise callbacks) run. */
async function settle(): Promise<void> {
  for (let i = 0; i < 3; i++) await Promise.resolve();
}

describe('InferenceWorkerPool bookkeeping', () => {
  beforeEach(() => {
    started.length = 0;
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('starts a new worker when there is no spare, and the spare after the delay', async () => {
    const pool = new InferenceWorkerPool({ spareDelayMs: 40 });
    const first = pool.take();
    expect(started).toEqual([first]);
    expect(pool.hasSpare).toBe(false);
    vi.advanceTimersByTime(39);
    expect(started).toHaveLength(1);
    vi.advanceTimersByTime(1);
    expect(started).toHaveLength(2);
    expect(pool.hasSpare).toBe(true);
    expect(pool.liveWorkers).toBe(2);
    const second = pool.take();
    expect(second).toBe(started[1]);
    expect(pool.hasSpare).toBe(false);
    await pool.close();
  });

  it('waits 150 ms for the spare by default', async () => {
    const pool = new InferenceWorkerPool();
    pool.take();
    vi.advanceTimersByTime(149);
    expect(pool.hasSpare).toBe(false);
    vi.advanceTimersByTime(1);
    expect(pool.hasSpare).toBe(true);
    await pool.close();
  });

  it('never hands out a spare that died, and does not count it as a spare', async () => {
    const pool = new InferenceWorkerPool({ spareDelayMs: 5 });
    pool.take();
    vi.advanceTimersByTime(5);
    const spare = started[1];
    spare?.crash();
    expect(pool.hasSpare).toBe(false);
    const taken = pool.take();
    expect(taken).not.toBe(spare);
    expect(taken.dead).toBe(false);
    expect(started).toHaveLength(3);
    await pool.close();
  });

  it('restarts the delay on each take, so quick takes start one spare', async () => {
    const pool = new InferenceWorkerPool({ spareDelayMs: 10 });
    pool.take();
    vi.advanceTimersByTime(8);
    pool.take();
    vi.advanceTimersByTime(8);
    expect(started).toHaveLength(2);
    vi.advanceTimersByTime(2);
    expect(started).toHaveLength(3);
    vi.runAllTimers();
    expect(started).toHaveLength(3);
    await pool.close();
  });

  it('counts a worker live until its thread exits', async () => {
    const pool = new InferenceWorkerPool({ spareDelayMs: 5 });
    const a = fake(pool.take());
    const b = fake(pool.take());
    expect(pool.liveWorkers).toBe(2);
    a.crash();
    await settle();
    expect(pool.liveWorkers).toBe(1);
    await b.close();
    await settle();
    expect(pool.liveWorkers).toBe(0);
    await pool.close();
  });

  it('closes the spare, cancels a pending one and stays closed', async () => {
    const pool = new InferenceWorkerPool({ spareDelayMs: 5 });
    const taken = fake(pool.take());
    vi.advanceTimersByTime(5);
    const spare = started[1];
    const closing = pool.close();
    expect(pool.close()).toBe(closing);
    await closing;
    expect(spare?.closes).toBe(1);
    expect(taken.closes).toBe(0);
    expect(pool.hasSpare).toBe(false);

    const other = new InferenceWorkerPool({ spareDelayMs: 5 });
    other.take();
    await other.close();
    vi.runAllTimers();
    expect(started).toHaveLength(3);
    // After close, a take still gets a worker but schedules no spare.
    const late = other.take();
    vi.runAllTimers();
    expect(started.at(-1)).toBe(late);
    expect(other.hasSpare).toBe(false);
  });
});
