/** Options of an IdleGapTimer. */
export interface IdleGapTimerOptions {
  /** How often the work is due. */
  intervalMs: number;
  /** The work: synchronous, short (a SQLite write, a window close). */
  run: () => void;
  /**
   * Frames are taken to have stopped when none came for this long; the work
   * then runs at its tick (default 2 x intervalMs).
   */
  idleAfterMs?: number;
}

/**
 * Periodic main-thread work that keeps out of the frame loop's way. While
 * frames arrive, a tick only marks the work due, and it runs right after the
 * next frame (setImmediate from frameHandled()): in the gap a paced camera
 * leaves between frames, never at a moment that may be the next frame's due
 * time. Without frames it runs at the tick. start() then close().
 */
export class IdleGapTimer {
  readonly #o: IdleGapTimerOptions;
  readonly #idleAfterMs: number;
  #timer: NodeJS.Timeout | undefined;
  #due = false;
  #scheduled = false;
  #lastFrameMs = Number.NEGATIVE_INFINITY;
  #closed = false;

  constructor(options: IdleGapTimerOptions) {
    this.#o = options;
    this.#idleAfterMs = options.idleAfterMs ?? 2 * options.intervalMs;
  }

  /** Starts the ticks (unref'd: they never keep the process alive). */
  start(): void {
    if (this.#closed || this.#timer !== undefined) return;
    this.#timer = setInterval(() => this.#tick(), this.#o.intervalMs);
    this.#timer.unref();
  }

  /** A frame was just handled: due work runs right after it. */
  frameHandled(): void {
    this.#lastFrameMs = performance.now();
    if (this.#due) this.runAfterFrame();
  }

  /** Runs the work right after the current frame (once, however often it is asked). */
  runAfterFrame(): void {
    this.#due = true;
    if (this.#scheduled || this.#closed) return;
    this.#scheduled = true;
    setImmediate(() => {
      this.#scheduled = false;
      if (this.#due && !this.#closed) this.#runNow();
    });
  }

  /** Whether the work is waiting for the next frame. */
  get due(): boolean {
    return this.#due;
  }

  /** Stops the ticks; work still due is not run (the owner runs its final work itself). Idempotent. */
  close(): void {
    this.#closed = true;
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  #tick(): void {
    if (performance.now() - this.#lastFrameMs < this.#idleAfterMs) this.#due = true;
    else this.#runNow();
  }

  #runNow(): void {
    this.#due = false;
    this.#o.run();
  }
}
