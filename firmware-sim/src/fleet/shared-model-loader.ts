import { WorkerOnnxModel, type InferenceWorkerPool, type ScoringModel } from '@linesight/vision';
import type { ModelLoader } from '@linesight/agent';

interface Entry {
  model: Promise<ScoringModel>;
  refs: number;
}

/**
 * Loads each model version (by sha256) once for a whole simulated fleet and
 * hands every device a handle to it; the model closes when its last handle
 * does. It saves a worker thread and an ONNX session per device, so
 * thousands of simulated devices fit in one process. Devices that share a
 * model also share its thread: with many devices scoring at once, latencies
 * include waiting for the others.
 */
export class SharedModelLoader {
  readonly #entries = new Map<string, Entry>();
  readonly #workers: InferenceWorkerPool | undefined;

  /** `workers`: where the models' threads come from (the caller owns and closes it). */
  constructor(workers?: InferenceWorkerPool) {
    this.#workers = workers;
  }

  /** Models loaded right now. */
  get loaded(): number {
    return this.#entries.size;
  }

  /** The loader to give each agent. */
  readonly load: ModelLoader = async (bytes, { watchdogMs, sha256 }) => {
    let entry = this.#entries.get(sha256);
    if (entry === undefined) {
      const model = WorkerOnnxModel.load(bytes, {
        watchdogMs,
        ...(this.#workers ? { workers: this.#workers } : {}),
      });
      entry = { model, refs: 0 };
      this.#entries.set(sha256, entry);
      model.catch(() => this.#entries.delete(sha256));
    }
    entry.refs++;
    let model: ScoringModel;
    try {
      model = await entry.model;
    } catch (err) {
      entry.refs--;
      throw err;
    }
    return this.#handle(sha256, entry, model);
  };

  /** Closes every model still loaded; idempotent. */
  async close(): Promise<void> {
    const entries = [...this.#entries.values()];
    this.#entries.clear();
    await Promise.allSettled(entries.map(async (e) => (await e.model).close()));
  }

  #handle(sha256: string, entry: Entry, model: ScoringModel): ScoringModel {
    let closed: Promise<void> | undefined;
    return {
      contract: model.contract,
      // The options too: the golden check's longer watchdog (30 s) must reach the shared model,
      // or thousands of devices' checks queued on its one thread trip the 2 s frame limit.
      run: (input, options) => model.run(input, options),
      scoreImage: (image) => model.scoreImage(image),
      close: () => {
        closed ??= (async () => {
          entry.refs--;
          if (entry.refs > 0 || this.#entries.get(sha256) !== entry) return;
          this.#entries.delete(sha256);
          await model.close();
        })();
        return closed;
      },
    };
  }
}
