import { LinesightError } from '@linesight/protocol';
import { InferenceWorker, type SessionInfo } from './inference-worker.ts';
import type { InferenceWorkerPool } from './inference-worker-pool.ts';
import type { ModelContract } from './model-contract.ts';
import { readModelContract } from './onnx-contract.ts';
import { RunGate } from './run-gate.ts';
import {
  scoreImageWith,
  type ModelOutput,
  type RunOptions,
  type ScoredImage,
  type ScoringModel,
} from './scoring-model.ts';
import {
  checkInputLength,
  checkSessionAgainstContract,
  errorMessage,
  readMap,
  readScore,
} from './session-checks.ts';

/** Options of a worker-hosted model. */
export interface WorkerOnnxModelOptions {
  /** Threads one inference may use (default 1). */
  intraOpNumThreads?: number;
  /**
   * A run slower than this fails with ERR_MODEL_WATCHDOG, and the worker is
   * replaced by a fresh one with the same model; the slow thread is closed
   * once its run returns (a run that never returns keeps its thread).
   * Default: no limit.
   */
  watchdogMs?: number;
  /**
   * Nice value (0-19) of the inference thread, e.g. 19 for a shadow model so
   * that the live model's threads get the cores first. Linux only; ignored
   * where a thread's priority cannot be set. Default: the process's.
   */
  threadNice?: number;
  /**
   * Where its worker threads come from (a warm spare makes a load or a
   * watchdog's replacement cheaper); the caller owns and closes the pool.
   * Default: a new thread each time, no spare.
   */
  workers?: InferenceWorkerPool;
}

/** Threads still inside a run the watchdog abandoned, over every model of the process. */
const abandonedThreads = new Set<Promise<void>>();

/**
 * An ONNX model whose session lives in its own worker thread: inference never
 * blocks the caller's event loop, and a hung inference can be abandoned.
 */
export class WorkerOnnxModel implements ScoringModel {
  readonly contract: ModelContract;
  readonly #bytes: Uint8Array;
  readonly #options: WorkerOnnxModelOptions;
  #worker: InferenceWorker;
  #session: SessionInfo;
  #restarting: Promise<void> | undefined;
  readonly #retiring = new Set<Promise<void>>();
  readonly #runs = new RunGate();
  /** Runs abandoned by the watchdog so far. */
  watchdogTrips = 0;

  /**
   * Runs the watchdog abandoned that have not returned yet, in every model of
   * the process. Their threads cannot be stopped from outside while in native
   * code, and a process that exits under them may abort: a clean shutdown
   * waits for them (see `waitForAbandonedRuns`).
   */
  static get abandonedRuns(): number {
    return abandonedThreads.size;
  }

  /** Resolves once every abandoned run has returned and its thread is closed. */
  static async waitForAbandonedRuns(): Promise<void> {
    while (abandonedThreads.size > 0) await Promise.allSettled([...abandonedThreads]);
  }

  private constructor(
    contract: ModelContract,
    bytes: Uint8Array,
    options: WorkerOnnxModelOptions,
    worker: InferenceWorker,
    session: SessionInfo,
  ) {
    this.contract = contract;
    this.#bytes = bytes;
    this.#options = options;
    this.#worker = worker;
    this.#session = session;
  }

  /** Reads the contract, starts a worker, creates the session there and checks it against the contract. */
  static async load(
    onnxBytes: Uint8Array,
    options: WorkerOnnxModelOptions = {},
  ): Promise<WorkerOnnxModel> {
    const contract = readModelContract(onnxBytes);
    const { worker, session } = await startSession(onnxBytes, contract, options);
    return new WorkerOnnxModel(contract, onnxBytes, options, worker, session);
  }

  async run(input: Float32Array, options: RunOptions = {}): Promise<ModelOutput> {
    this.#runs.checkOpen();
    const dims = checkInputLength(this.contract, input);
    if (this.#restarting !== undefined) await this.#restarting;
    return this.#runs.track(
      this.#runWithWatchdog(input, dims, options.watchdogMs ?? this.#options.watchdogMs),
    );
  }

  scoreImage(image: Uint8Array): Promise<ScoredImage> {
    return scoreImageWith(this, image);
  }

  close(): Promise<void> {
    return this.#runs.close(async () => {
      await this.#restarting?.catch(() => undefined);
      await this.#worker.release(this.#session.handle).catch(() => undefined);
      await this.#worker.close();
      await Promise.allSettled([...this.#retiring]);
    });
  }

  async #runWithWatchdog(
    input: Float32Array,
    dims: number[],
    limitMs: number | undefined,
  ): Promise<ModelOutput> {
    const { inputSpec, outputs } = this.contract;
    const fetches = outputs.map === undefined ? [outputs.score] : [outputs.score, outputs.map];
    const worker = this.#worker;
    const call = worker.run(this.#session.handle, inputSpec.inputName, input, dims, fetches);
    let timer: NodeJS.Timeout | undefined;
    try {
      const relayed =
        limitMs === undefined
          ? await call
          : await Promise.race([
              call,
              new Promise<never>((_, reject) => {
                timer = setTimeout(() => reject(new WatchdogTimeout(limitMs)), limitMs);
              }),
            ]);
      const score = readScore(relayed[outputs.score], outputs.score);
      if (outputs.map === undefined) return { score };
      return { score, map: readMap(relayed[outputs.map], outputs.map, this.contract.mapScale) };
    } catch (err) {
      if (err instanceof WatchdogTimeout) {
        this.watchdogTrips++;
        call.catch(() => undefined);
        this.#replaceWorker(worker);
        // Its own code tells callers (the agent's frame pipeline counts watchdogTrips) a trip from a failure.
        throw new LinesightError(
          'ERR_MODEL_WATCHDOG',
          `inference took longer than the ${limitMs} ms watchdog limit`,
          { details: { watchdogMs: limitMs } },
        );
      }
      if (err instanceof LinesightError) throw err;
      throw new LinesightError('ERR_MODEL_OUTPUT', `inference failed: ${errorMessage(err)}`, {
        cause: err,
      });
    } finally {
      clearTimeout(timer);
    }
  }

  #replaceWorker(stuck: InferenceWorker): void {
    if (stuck !== this.#worker || this.#runs.closed) return;
    // Terminating a thread inside native inference would abort the process, so the
    // stuck thread is left to finish its run and is closed once it answers.
    const stuckHandle = this.#session.handle;
    const retired = stuck
      .release(stuckHandle)
      .catch(() => undefined)
      .then(() => stuck.close())
      .finally(() => {
        this.#retiring.delete(retired);
        abandonedThreads.delete(retired);
      });
    this.#retiring.add(retired);
    abandonedThreads.add(retired);
    this.#restarting = (async () => {
      const { worker, session } = await startSession(this.#bytes, this.contract, this.#options);
      this.#worker = worker;
      this.#session = session;
    })().finally(() => {
      this.#restarting = undefined;
    });
    this.#restarting.catch(() => undefined);
  }
}

class WatchdogTimeout extends Error {
  constructor(limitMs: number) {
    super(`watchdog ${limitMs} ms`);
  }
}

async function startSession(
  bytes: Uint8Array,
  contract: ModelContract,
  options: WorkerOnnxModelOptions,
): Promise<{ worker: InferenceWorker; session: SessionInfo }> {
  const worker = options.workers?.take() ?? new InferenceWorker();
  let session: SessionInfo;
  try {
    session = await worker.load(
      bytes,
      {
        intraOpNumThreads: options.intraOpNumThreads ?? 1,
        interOpNumThreads: 1,
        graphOptimizationLevel: 'all',
        executionMode: 'sequential',
      },
      options.threadNice,
    );
  } catch (cause) {
    await worker.close();
    throw new LinesightError(
      'ERR_MODEL_LOAD',
      `ONNX Runtime cannot load the model: ${errorMessage(cause)}`,
      { cause },
    );
  }
  try {
    checkSessionAgainstContract(session, contract);
  } catch (err) {
    await worker.close();
    throw err;
  }
  return { worker, session };
}
