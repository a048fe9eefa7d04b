import type { Clock } from './clock.ts';

/**
 * Runs a tick on a timer, and other work between ticks, one at a time in
 * order; at most one tick waits behind the running one. start() then close().
 */
export class SerialRunner {
  readonly #clock: Clock;
  readonly #tickMs: number;
  readonly #tick: () => Promise<void>;
  #timer: unknown;
  #lock: Promise<void> = Promise.resolve();
  #queued = false;
  #closed = false;

  /** `tick` must not throw: it reports its own failures. */
  constructor(clock: Clock, tickMs: number, tick: () => Promise<void>) {
    this.#clock = clock;
    this.#tickMs = tickMs;
    this.#tick = tick;
  }

  /** True once close() was called. */
  get closed(): boolean {
    return this.#closed;
  }

  /** Starts the timer and asks for a first tick. */
  start(): void {
    if (this.#closed || this.#timer !== undefined) return;
    this.#timer = this.#clock.setInterval(() => this.kick(), this.#tickMs);
    this.kick();
  }

  /** Asks for a tick as soon as possible (at most one waits behind the running one). */
  kick(): void {
    if (this.#closed || this.#queued) return;
    this.#queued = true;
    void this.exclusive(async () => {
      this.#queued = false;
      await this.#tick();
    });
  }

  /** Runs `fn` when no tick or other work runs. */
  exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#lock.then(fn);
    this.#lock = run.then(
      () => undefined,
      () => undefined,
    );
    return run;
  }

  /** Waits until no tick or work runs or is queued. */
  async idle(): Promise<void> {
    for (let lock = this.#lock; ; lock = this.#lock) {
      await lock;
      if (lock === this.#lock) return;
    }
  }

  /** Stops the timer and waits for the work in progress; idempotent. */
  async close(): Promise<void> {
    this.#closed = true;
    if (this.#timer !== undefined) this.#clock.clearInterval(this.#timer);
    this.#timer = undefined;
    await this.idle();
  }
}
