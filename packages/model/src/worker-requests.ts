import type { Worker } from 'node:worker_threads';

/**
 * Requests to a fixed set of worker threads, each answered by one reply with
 * the request's id. A worker's error or abnormal exit fails every pending and
 * later request; close() terminates the workers. The shared plumbing of the
 * trainer's thread pools (features, classifier gradients).
 */
export class WorkerRequests<Reply extends { id: number }> {
  readonly #workers: Worker[];
  readonly #name: string;
  readonly #pending = new Map<
    number,
    { resolve: (reply: Reply) => void; reject: (e: Error) => void }
  >();
  #nextId = 0;
  #failure: Error | undefined;

  /** `name` says which pool in errors, e.g. "feature". */
  constructor(workers: Worker[], name: string) {
    this.#workers = workers;
    this.#name = name;
    for (const worker of workers) {
      worker.on('message', (reply: Reply) => {
        const waiting = this.#pending.get(reply.id);
        this.#pending.delete(reply.id);
        waiting?.resolve(reply);
      });
      worker.on('error', (err) => this.#fail(err));
      worker.on('exit', (code) => {
        if (code !== 0) this.#fail(new Error(`${name} worker exited with code ${code}`));
      });
    }
  }

  /** Threads the pool runs. */
  get size(): number {
    return this.#workers.length;
  }

  /** Sends the request `build(id)` to worker `k mod size` and waits for its reply. */
  send(k: number, build: (id: number) => object): Promise<Reply> {
    if (this.#failure !== undefined) return Promise.reject(this.#failure);
    const id = this.#nextId++;
    return new Promise<Reply>((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      (this.#workers[k % this.#workers.length] as Worker).postMessage(build(id));
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
    this.#fail(new Error(`${this.#name} pool closed`));
    await Promise.all(workers.map((w) => w.terminate()));
  }
}
