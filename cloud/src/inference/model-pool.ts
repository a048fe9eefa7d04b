import { LinesightError } from '@linesight/protocol';
import {
  WorkerOnnxModel,
  type InferenceWorkerPool,
  type ModelContract,
  type ModelOutput,
} from '@linesight/vision';

/** How one model version is hosted. */
export interface ModelPoolOptions {
  /** Worker threads, each with its own ONNX session (at least 1). */
  workers: number;
  /** A run slower than this fails and its worker is replaced (see WorkerOnnxModel). */
  watchdogMs?: number;
  /** Where the worker threads come from (the caller owns and closes it); default a new thread each. */
  threads?: InferenceWorkerPool;
}

/**
 * Several worker-hosted sessions of one model version. Each run goes to the
 * session with the fewest runs in flight, so concurrent requests do not queue
 * behind one thread while another idles.
 */
export class ModelPool {
  readonly contract: ModelContract;
  readonly #sessions: WorkerOnnxModel[];
  readonly #busy: number[];
  #closing: Promise<void> | undefined;

  private constructor(sessions: WorkerOnnxModel[]) {
    this.#sessions = sessions;
    this.#busy = sessions.map(() => 0);
    this.contract = (sessions[0] as WorkerOnnxModel).contract;
  }

  /** Loads `workers` sessions in parallel; if one fails, closes the others and throws its error. */
  static async load(onnx: Uint8Array, options: ModelPoolOptions): Promise<ModelPool> {
    const count = Math.max(1, Math.floor(options.workers));
    const loads = await Promise.allSettled(
      Array.from({ length: count }, () =>
        WorkerOnnxModel.load(onnx, {
          intraOpNumThreads: 1,
          ...(options.watchdogMs === undefined ? {} : { watchdogMs: options.watchdogMs }),
          ...(options.threads === undefined ? {} : { workers: options.threads }),
        }),
      ),
    );
    const loaded = loads.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
    const failed = loads.find((r) => r.status === 'rejected');
    if (failed !== undefined) {
      await Promise.allSettled(loaded.map((m) => m.close()));
      throw failed.reason;
    }
    return new ModelPool(loaded);
  }

  /** Number of runs in flight over all sessions. */
  get inFlight(): number {
    return this.#busy.reduce((a, b) => a + b, 0);
  }

  /** Runs one NCHW input on the least busy session; the input is consumed. */
  async run(input: Float32Array): Promise<ModelOutput> {
    if (this.#closing !== undefined) throw new LinesightError('ERR_MODEL_LOAD', 'model is closed');
    let pick = 0;
    for (let i = 1; i < this.#busy.length; i++) {
      if ((this.#busy[i] as number) < (this.#busy[pick] as number)) pick = i;
    }
    this.#busy[pick] = (this.#busy[pick] as number) + 1;
    try {
      return await (this.#sessions[pick] as WorkerOnnxModel).run(input);
    } finally {
      this.#busy[pick] = (this.#busy[pick] as number) - 1;
    }
  }

  /** Waits for in-flight runs, then closes every session; idempotent. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      const results = await Promise.allSettled(this.#sessions.map((s) => s.close()));
      const errors = results.flatMap((r) => (r.status === 'rejected' ? [r.reason as unknown] : []));
      if (errors.length > 0) throw new AggregateError(errors, 'closing model sessions failed');
    })();
    return this.#closing;
  }
}
