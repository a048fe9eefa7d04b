import { Worker } from 'node:worker_threads';
import { LinesightError } from '@linesight/protocol';

/** Session metadata as ORT reports it, relayed from the worker. */
export interface SessionInfo {
  handle: number;
  /** The nice value the worker thread runs at, when it was asked to lower it and could. */
  nice: number | null;
  inputNames: readonly string[];
  outputNames: readonly string[];
  inputMetadata: readonly {
    name: string;
    isTensor: boolean;
    type?: string;
    shape?: readonly (number | string)[];
  }[];
}

/** One output tensor relayed from the worker. */
export interface RelayedTensor {
  type: string;
  dims: readonly number[];
  data: unknown;
}

/** Options of a session created in the worker (ORT session options). */
export interface WorkerSessionOptions {
  intraOpNumThreads: number;
  interOpNumThreads: number;
  graphOptimizationLevel: 'all';
  executionMode: 'sequential';
}

interface Pending {
  resolve: (value: Record<string, unknown>) => void;
  reject: (err: Error) => void;
}

/**
 * A worker thread that hosts ONNX Runtime sessions. Calls are messages; the
 * input tensor is transferred, not copied. If the thread dies, every pending
 * call fails with ERR_MODEL_OUTPUT and later calls fail fast.
 */
export class InferenceWorker {
  readonly #worker: Worker;
  readonly #pending = new Map<number, Pending>();
  #nextId = 1;
  #dead: Error | undefined;
  #closing: Promise<void> | undefined;

  /** Resolves when the thread has exited (closed, crashed or terminated). */
  readonly exited: Promise<void>;

  constructor() {
    this.#worker = new Worker(new URL('./inference-worker-thread.js', import.meta.url));
    this.#worker.on(
      'message',
      (msg: { id: number; ok: boolean; error?: string } & Record<string, unknown>) => {
        const pending = this.#pending.get(msg.id);
        if (pending === undefined) return;
        this.#pending.delete(msg.id);
        if (this.#pending.size === 0) this.#worker.unref();
        if (msg.ok) pending.resolve(msg);
        else pending.reject(new Error(msg.error ?? 'worker call failed'));
      },
    );
    this.#worker.on('error', (err) => this.#fail(err));
    this.exited = new Promise((resolve) =>
      this.#worker.once('exit', (code) => {
        this.#fail(new Error(`inference worker exited with code ${code}`));
        resolve();
      }),
    );
    // An idle worker must not keep the process alive; one with calls in flight must.
    this.#worker.unref();
  }

  /** True once the worker has died or been closed. */
  get dead(): boolean {
    return this.#dead !== undefined;
  }

  /**
   * Creates a session from model bytes (copied into the worker); with `nice`,
   * the worker thread first lowers its CPU priority to that nice value.
   */
  async load(
    bytes: Uint8Array,
    options: WorkerSessionOptions,
    nice?: number,
  ): Promise<SessionInfo> {
    // Copy into an exact-size buffer (a Buffer may be a view into a larger pool).
    const copy = new Uint8Array(bytes).buffer;
    return (await this.#call(
      { op: 'load', bytes: copy, options, ...(nice === undefined ? {} : { nice }) },
      [copy],
    )) as unknown as SessionInfo;
  }

  /** Runs a session; the input's buffer is transferred to the worker and unusable afterwards. */
  async run(
    handle: number,
    inputName: string,
    input: Float32Array,
    dims: readonly number[],
    fetches: readonly string[],
  ): Promise<Record<string, RelayedTensor>> {
    const reply = await this.#call({ op: 'run', handle, inputName, input, dims, fetches }, [
      input.buffer as ArrayBuffer,
    ]);
    return reply.outputs as Record<string, RelayedTensor>;
  }

  /** Releases a session. */
  async release(handle: number): Promise<void> {
    if (this.#dead !== undefined) return;
    await this.#call({ op: 'release', handle }, []);
  }

  /**
   * Stops the thread; idempotent. Call it only when no run is in flight:
   * terminating a thread inside a native ONNX Runtime call aborts the process.
   */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      this.#fail(new Error('inference worker closed'));
      await this.#worker.terminate();
    })();
    return this.#closing;
  }

  #call(
    message: Record<string, unknown>,
    transfer: ArrayBuffer[],
  ): Promise<Record<string, unknown>> {
    if (this.#dead !== undefined) {
      return Promise.reject(
        new LinesightError(
          'ERR_MODEL_OUTPUT',
          `inference worker is not running: ${this.#dead.message}`,
        ),
      );
    }
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      if (this.#pending.size === 0) this.#worker.ref();
      this.#pending.set(id, { resolve, reject });
      this.#worker.postMessage({ ...message, id }, transfer);
    });
  }

  #fail(err: Error): void {
    this.#dead ??= err;
    this.#worker.unref();
    for (const [id, p] of this.#pending) {
      this.#pending.delete(id);
      p.reject(err);
    }
  }
}
