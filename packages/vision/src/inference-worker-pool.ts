import { InferenceWorker } from './inference-worker.ts';

/** Options of an inference worker pool. */
export interface InferenceWorkerPoolOptions {
  /**
   * A spare starts this long after the last one was taken, off a swap's
   * critical moment (default 150).
   */
  spareDelayMs?: number;
}

const DEFAULT_SPARE_DELAY_MS = 150;

/**
 * Hands out inference worker threads and keeps one spare warm. Starting a
 * thread and loading ONNX Runtime into it costs tens of milliseconds of CPU;
 * with a spare ready, a hot swap or a watchdog's worker replacement does not
 * pay it while frames are streaming. Whoever starts models (the agent, the
 * cloud's inference, a benchmark) owns one pool and closes it after them.
 * A worker it hands out belongs to its taker, which closes it.
 */
export class InferenceWorkerPool {
  readonly #spareDelayMs: number;
  readonly #live = new Set<InferenceWorker>();
  #spare: InferenceWorker | undefined;
  #spareTimer: NodeJS.Timeout | undefined;
  #closing: Promise<void> | undefined;

  constructor(options: InferenceWorkerPoolOptions = {}) {
    this.#spareDelayMs = options.spareDelayMs ?? DEFAULT_SPARE_DELAY_MS;
  }

  /**
   * A started worker, ready at once: the spare when there is one, else a new
   * thread; schedules the next spare. After close(), a new thread and no spare.
   */
  take(): InferenceWorker {
    const spare = this.#spare;
    this.#spare = undefined;
    clearTimeout(this.#spareTimer);
    if (this.#closing === undefined) {
      this.#spareTimer = setTimeout(() => {
        this.#spareTimer = undefined;
        this.#spare ??= this.#start();
      }, this.#spareDelayMs);
      this.#spareTimer.unref();
    }
    return spare !== undefined && !spare.dead ? spare : this.#start();
  }

  /** True while a warm spare is waiting to be taken. */
  get hasSpare(): boolean {
    return this.#spare !== undefined && !this.#spare.dead;
  }

  /** Threads this pool started that have not exited yet (handed out or spare). */
  get liveWorkers(): number {
    return this.#live.size;
  }

  /**
   * Stops the spare and starts no other; idempotent. Workers already handed
   * out are their takers' to close (a thread inside a native run must not be
   * terminated), so close the models first.
   */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      clearTimeout(this.#spareTimer);
      this.#spareTimer = undefined;
      const spare = this.#spare;
      this.#spare = undefined;
      await spare?.close();
    })();
    return this.#closing;
  }

  #start(): InferenceWorker {
    const worker = new InferenceWorker();
    this.#live.add(worker);
    void worker.exited.then(() => this.#live.delete(worker));
    return worker;
  }
}
