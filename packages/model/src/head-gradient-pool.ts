import { Worker } from 'node:worker_threads';
import type { BatchGradients, CellHead, HeadExample, PartGradients } from './cell-head.ts';

/** First message to a worker: the examples, in shared memory. */
export interface PoolInit {
  type: 'init';
  features: SharedArrayBuffer;
  exampleLength: number;
  defect: Uint8Array;
  weights: Float64Array;
  cells: number;
  hidden: number;
}

/** One part of a batch to compute at the given weights. */
export interface PoolRequest {
  type: 'part';
  id: number;
  inputs: number;
  hidden: number;
  w1: Float32Array;
  b1: Float32Array;
  w2: Float32Array;
  b2: number;
  indices: number[];
}

/** A worker's answer. */
export type PoolReply = PartGradients & { id: number };

/**
 * Worker threads that compute the gradients of batch parts for
 * trainCellHead, one part per thread, over examples held once in shared
 * memory: training the cell classifier uses two cores. The numbers are those
 * of the in-thread computation (same code, same order within a part).
 * start() then close().
 */
export class HeadGradientPool {
  readonly #workers: Worker[];
  readonly #pending = new Map<
    number,
    { resolve: (p: PartGradients) => void; reject: (e: Error) => void }
  >();
  #nextId = 0;
  #failure: Error | undefined;

  private constructor(workers: Worker[]) {
    this.#workers = workers;
    for (const worker of workers) {
      worker.on('message', (reply: PoolReply) => {
        const waiting = this.#pending.get(reply.id);
        this.#pending.delete(reply.id);
        waiting?.resolve({
          grads: reply.grads,
          lossSum: reply.lossSum,
          weightSum: reply.weightSum,
        });
      });
      worker.on('error', (err) => this.#fail(err));
      worker.on('exit', (code) => {
        if (code !== 0) this.#fail(new Error(`gradient worker exited with code ${code}`));
      });
    }
  }

  /**
   * Copies the examples' features into shared memory (the examples then point
   * into it, so their own arrays can be collected) and starts the workers.
   */
  static start(
    examples: HeadExample[],
    cells: number,
    hidden: number,
    threads: number,
  ): HeadGradientPool {
    const length = examples[0]?.z.length ?? 0;
    const shared = new SharedArrayBuffer(examples.length * length * 4);
    const all = new Float32Array(shared);
    for (const [i, e] of examples.entries()) {
      all.set(e.z, i * length);
      e.z = all.subarray(i * length, (i + 1) * length);
    }
    const init: PoolInit = {
      type: 'init',
      features: shared,
      exampleLength: length,
      defect: Uint8Array.from(examples, (e) => (e.defect ? 1 : 0)),
      weights: Float64Array.from(examples, (e) => e.weight),
      cells,
      hidden,
    };
    const workers = Array.from({ length: threads }, () => {
      const worker = new Worker(new URL('./head-gradient-worker.js', import.meta.url));
      worker.postMessage(init);
      return worker;
    });
    return new HeadGradientPool(workers);
  }

  /** The batchGradients function of trainCellHead: part k on worker k mod threads. */
  readonly batchGradients: BatchGradients = (head: CellHead, parts) =>
    Promise.all(parts.map((indices, k) => this.#part(head, indices, k)));

  #part(head: CellHead, indices: readonly number[], k: number): Promise<PartGradients> {
    if (this.#failure !== undefined) return Promise.reject(this.#failure);
    const id = this.#nextId++;
    const request: PoolRequest = {
      type: 'part',
      id,
      inputs: head.inputs,
      hidden: head.hidden,
      w1: head.w1,
      b1: head.b1,
      w2: head.w2,
      b2: head.b2,
      indices: [...indices],
    };
    return new Promise<PartGradients>((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      (this.#workers[k % this.#workers.length] as Worker).postMessage(request);
    });
  }

  #fail(err: Error): void {
    this.#failure ??= err;
    for (const waiting of this.#pending.values()) waiting.reject(err);
    this.#pending.clear();
  }

  /** Stops the workers; idempotent. */
  async close(): Promise<void> {
    const workers = this.#workers.splice(0);
    this.#fail(new Error('gradient pool closed'));
    await Promise.all(workers.map((w) => w.terminate()));
  }
}
