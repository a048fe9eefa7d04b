import type { ModelContract } from '@linesight/vision';
import type { EvalMetrics } from './metrics.ts';

/** A step of training, reported as it advances. */
export interface TrainingProgress {
  step: 'decode' | 'features' | 'fit' | 'validate' | 'export';
  done: number;
  total: number;
  /** Current epoch (1-based) of a trainer that has epochs. */
  epoch?: number;
  epochs?: number;
  /** Mean training loss of the last finished epoch. */
  loss?: number;
  /** Time spent in this step so far. */
  elapsedMs?: number;
}

/** A trained model: the ONNX artifact with its contract, validation metrics and reference scores. */
export interface TrainedModel {
  onnx: Uint8Array;
  contract: ModelContract;
  /** Metrics on the validation split at the contract's threshold. */
  metrics: EvalMetrics;
  /** Scores of the held-out good images: the reference distribution for drift checks. */
  referenceScores: number[];
  /** Wall time of training; kept out of the contract so the artifact stays reproducible. */
  trainingMs: number;
}
