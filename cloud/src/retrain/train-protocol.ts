import type { EvalMetrics, TrainingProgress } from '@linesight/model';
import type { HeldOutMetrics } from './retrain-store.ts';

/** One image file of a training job. */
export interface SpecSample {
  path: string;
  label: 'good' | 'defect';
  className: string;
  /** A labelled sample of the line as it is now (not the parent's data): it sets the threshold. */
  recent?: boolean;
}

/** What the trainer process is asked to do (a JSON file). */
export interface TrainSpec {
  train: SpecSample[];
  holdout: SpecSample[];
  championPath: string;
  outPath: string;
  options: { seed: number; epochs: number; members: number; size: number; name: string };
}

/** A message of the trainer process. */
export type ChildMessage =
  | {
      type: 'progress';
      progress: TrainingProgress | { step: 'compare'; done: number; total: number };
    }
  | {
      type: 'done';
      champion: HeldOutMetrics;
      challenger: HeldOutMetrics;
      /** Share of held-out images on which both models' verdicts agree (null: none held out). */
      agreement: number | null;
      trainingMs: number;
      datasetFingerprint: string;
      mode: string;
    }
  | { type: 'error'; code: string; message: string };

/** The part of an evaluation a job keeps. */
export function heldOutMetrics(m: EvalMetrics): HeldOutMetrics {
  return {
    auroc: m.auroc,
    ap: m.ap,
    f1: m.f1,
    precision: m.precision,
    recall: m.recall,
    threshold: m.threshold,
    images: m.images,
  };
}
