import { Worker } from 'node:worker_threads';
import type { BatchGradients, CellHead, HeadExample, PartGradients } from './cell-head.ts';
import { WorkerRequests } from './worker-requests.ts';

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
  readonly #requests: WorkerRequests<PoolReply>;

  private constructor(workers: Worker[]) {
    this.#requests = new WorkerRequests<PoolReply>(workers, 'gradient');
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

  async #part(head: CellHead, indices: readonly number[], k: number): Promise<PartGradients> {
    const reply = await this.#requests.send(k, (id): PoolRequest => ({
      type: 'part',
      id,
      inputs: head.inputs,
      hidden: head.hidden,
      w1: head.w1,
      b1: head.b1,
      w2: head.w2,
      b2: head.b2,
      indices: [...indices],
    }));
    return { grads: reply.grads, lossSum: reply.lossSum, weightSum: reply.weightSum };
  }

  /** Stops the workers; idempotent. */
  close(): Promise<void> {
    return this.#requests.close();
  }
}
