import { LinesightError } from '@linesight/protocol';

/**
 * The in-flight runs of one model: closing refuses new runs, waits for the
 * runs already started, then releases the model once, however often it is called.
 */
export class RunGate {
  readonly #inFlight = new Set<Promise<unknown>>();
  #closing: Promise<void> | undefined;

  /** True once closing has begun. */
  get closed(): boolean {
    return this.#closing !== undefined;
  }

  /** Throws ERR_MODEL_LOAD once closing has begun. */
  checkOpen(): void {
    if (this.closed) throw new LinesightError('ERR_MODEL_LOAD', 'model is closed');
  }

  /** Tracks a started run until it settles. */
  async track<T>(running: Promise<T>): Promise<T> {
    this.#inFlight.add(running);
    try {
      return await running;
    } finally {
      this.#inFlight.delete(running);
    }
  }

  /** Waits for in-flight runs, then calls `release`; safe to call more than once. */
  close(release: () => Promise<void>): Promise<void> {
    this.#closing ??= (async () => {
      await Promise.allSettled([...this.#inFlight]);
      await release();
    })();
    return this.#closing;
  }
}
