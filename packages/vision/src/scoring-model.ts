import type { ModelContract } from './model-contract.ts';
import { preprocessImage } from './preprocess.ts';

/** A per-cell anomaly map, row-major, `height` rows of `width` cells. */
export interface AnomalyMap {
  width: number;
  height: number;
  data: Float32Array;
  /**
   * The map value a heatmap shows at full heat, when the model's contract
   * says (`mapScale`, e.g. 1 for a map of defect scores in 0..1).
   */
  scale?: number;
}

/** What a model says about one input: a score and, if the model has one, an anomaly map. */
export interface ModelOutput {
  score: number;
  map?: AnomalyMap;
}

/** A model output with how long preprocessing and inference took. */
export interface ScoredImage extends ModelOutput {
  preprocessMs: number;
  inferenceMs: number;
}

/** Per-run options. */
export interface RunOptions {
  /** The watchdog limit of this run, e.g. a longer one for a check at load time. */
  watchdogMs?: number;
}

/**
 * A loaded model that scores images by its contract: in-process (OnnxModel)
 * or in a worker thread (WorkerOnnxModel). The agent and the cloud depend on this.
 */
export interface ScoringModel {
  readonly contract: ModelContract;
  /**
   * Runs the model on one NCHW float32 input; the input may be consumed.
   * `watchdogMs` replaces the model's own limit for this run (where it has one).
   */
  run(input: Float32Array, options?: RunOptions): Promise<ModelOutput>;
  /** Preprocesses an encoded image as the contract says and scores it. */
  scoreImage(image: Uint8Array): Promise<ScoredImage>;
  /** Waits for in-flight runs, then releases resources; idempotent. */
  close(): Promise<void>;
}

/** Preprocesses an image by a model's contract and runs it, timing both steps. */
export async function scoreImageWith(
  model: Pick<ScoringModel, 'contract' | 'run'>,
  image: Uint8Array,
): Promise<ScoredImage> {
  const t0 = performance.now();
  const input = await preprocessImage(image, model.contract.inputSpec);
  const t1 = performance.now();
  const output = await model.run(input);
  const t2 = performance.now();
  return { ...output, preprocessMs: t1 - t0, inferenceMs: t2 - t1 };
}
