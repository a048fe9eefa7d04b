import { Worker } from 'node:worker_threads';
import type { PyramidGeometry } from './pyramid-features.ts';

/** First message to a worker: the geometry every image is extracted with. */
export interface FeatureInit {
  type: 'init';
  geometry: PyramidGeometry;
}

/** One image to extract the features of. */
export interface FeatureRequest {
  type: 'image';
  id: number;
  input: Float32Array;
}

/** A worker's answer. */
export interface FeatureReply {
  id: number;
  features: Float32Array;
}

/**
 * Worker threads that extract the pyramid features of training images, one
 * image per request, spread round robin: feature extraction uses every core
 * it is given. The numbers are those of pyramidFeatures in this thread (same
 * code); callers keep their own order. start() then close().
 */
export class FeaturePool {
  readonly #workers: Worker[];
  readonly #pending = new Map<
    number,
    { resolve: (features: Float32Array) => void; reject: (e: Error) => void }
  >();
  #nextId = 0;
  #failure: Error | undefined;

  private constructor(workers: Worker[]) {
    this.#workers = workers;
    for (const worker of workers) {
      worker.on('message', (reply: FeatureReply) => {
        const waiting = this.#pending.get(reply.id);
        this.#pending.delete(reply.id);
        waiting?.resolve(reply.features);
      });
      worker.on('error', (err) => this.#fail(err));
      worker.on('exit', (code) => {
        if (code !== 0) this.#fail(new Error(`feature worker exited with code ${code}`));
      });
    }
  }

  /** Starts `threads` workers for one geometry. */
  static start(geometry: PyramidGeometry, threads: number): FeaturePool {
    const init: FeatureInit = { type: 'init', geometry };
    const workers = Array.from({ length: threads }, () => {
      const worker = new Worker(new URL('./feature-worker.js', import.meta.url));
      worker.postMessage(init);
      return worker;
    });
    return new FeaturePool(workers);
  }

  /** Threads the pool runs. */
  get threads(): number {
    return this.#workers.length;
  }

  /** The features of one input tensor (copied to the worker; the caller keeps its array). */
  features(input: Float32Array): Promise<Float32Array> {
    if (this.#failure !== undefined) return Promise.reject(this.#failure);
    const id = this.#nextId++;
    const request: FeatureRequest = { type: 'image', id, input };
    return new Promise<Float32Array>((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      (this.#workers[id % this.#workers.length] as Worker).postMessage(request);
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
    this.#fail(new Error('feature pool closed'));
    await Promise.all(workers.map((w) => w.terminate()));
  }
}
