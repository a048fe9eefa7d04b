import { Worker } from 'node:worker_threads';
import type { PyramidGeometry } from './pyramid-features.ts';
import { WorkerRequests } from './worker-requests.ts';

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
  readonly #requests: WorkerRequests<FeatureReply>;
  #next = 0;

  private constructor(workers: Worker[]) {
    this.#requests = new WorkerRequests<FeatureReply>(workers, 'feature');
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
    return this.#requests.size;
  }

  /** The features of one input tensor (copied to the worker; the caller keeps its array). */
  async features(input: Float32Array): Promise<Float32Array> {
    const reply = await this.#requests.send(this.#next++, (id): FeatureRequest => ({
      type: 'image',
      id,
      input,
    }));
    return reply.features;
  }

  /** Stops the workers; idempotent. */
  close(): Promise<void> {
    return this.#requests.close();
  }
}
