/** What one train-and-evaluate run of `bench model` measures. */
export interface ModelBenchRun {
  trainImages: number;
  testImages: number;
  auroc: number | null;
  ap: number | null;
  pixelAuroc: number | null;
  /** What the model's map is (the contract's `training.map`), null for a model that does not say. */
  map: string | null;
  f1: number | null;
  perClass: Record<string, number | null>;
  trainingSeconds: number;
  inferenceMsPerFrame: { threads1: number; threads2: number };
  modelBytes: number;
}

/** One fold's result in `bench model --folds`. */
export interface FoldRun extends ModelBenchRun {
  fold: number;
}

/** Mean and spread over the folds of a cross-validation. */
export interface FoldSummary {
  aurocMean: number | null;
  /** Sample standard deviation over the folds (n - 1); null with fewer than two values. */
  aurocStd: number | null;
  aurocMin: number | null;
  apMean: number | null;
  f1Mean: number | null;
  pixelAurocMean: number | null;
  pixelAurocStd: number | null;
  /** Per defect class, the mean over folds of its AUROC against the fold's good images. */
  perClass: Record<string, number | null>;
  perClassStd: Record<string, number | null>;
  /** Mean training time per fold. */
  trainSeconds: number;
  /** Mean ONNX Runtime time per frame on one thread, and on two. */
  inferenceMs: number;
  inferenceMsThreads2: number;
  /** The largest model of the folds. */
  modelBytes: number;
  perFold: FoldRun[];
}

/** Summarizes fold runs: means, sample standard deviations, per class means; nulls are left out. */
export function summarizeFolds(runs: readonly FoldRun[]): FoldSummary {
  const pick = (f: (run: FoldRun) => number | null): number[] =>
    runs.map(f).filter((v): v is number => v !== null && Number.isFinite(v));
  const classes = [...new Set(runs.flatMap((run) => Object.keys(run.perClass)))].sort();
  const perClass: Record<string, number | null> = {};
  const perClassStd: Record<string, number | null> = {};
  for (const c of classes) {
    const values = pick((run) => run.perClass[c] ?? null);
    perClass[c] = meanOrNull(values);
    perClassStd[c] = stdOrNull(values);
  }
  return {
    aurocMean: meanOrNull(pick((r) => r.auroc)),
    aurocStd: stdOrNull(pick((r) => r.auroc)),
    aurocMin: minOrNull(pick((r) => r.auroc)),
    apMean: meanOrNull(pick((r) => r.ap)),
    f1Mean: meanOrNull(pick((r) => r.f1)),
    pixelAurocMean: meanOrNull(pick((r) => r.pixelAuroc)),
    pixelAurocStd: stdOrNull(pick((r) => r.pixelAuroc)),
    perClass,
    perClassStd,
    trainSeconds: meanOrNull(pick((r) => r.trainingSeconds)) ?? 0,
    inferenceMs: meanOrNull(pick((r) => r.inferenceMsPerFrame.threads1)) ?? 0,
    inferenceMsThreads2: meanOrNull(pick((r) => r.inferenceMsPerFrame.threads2)) ?? 0,
    modelBytes: Math.max(0, ...runs.map((r) => r.modelBytes)),
    perFold: [...runs],
  };
}

function values(v: readonly number[], f: (v: readonly number[]) => number): number | null {
  return v.length === 0 ? null : round(f(v));
}

/** The mean to 4 decimals; null for no values. */
export function meanOrNull(v: readonly number[]): number | null {
  return values(v, (x) => x.reduce((a, b) => a + b, 0) / x.length);
}

/** The smallest value; null for no values. */
export function minOrNull(v: readonly number[]): number | null {
  return values(v, (x) => Math.min(...x));
}

/** The sample standard deviation (n - 1) to 4 decimals; null with fewer than two values. */
export function stdOrNull(v: readonly number[]): number | null {
  if (v.length < 2) return null;
  const m = v.reduce((a, b) => a + b, 0) / v.length;
  return round(Math.sqrt(v.reduce((a, b) => a + (b - m) ** 2, 0) / (v.length - 1)));
}

function round(value: number): number {
  return Number(value.toFixed(4));
}
