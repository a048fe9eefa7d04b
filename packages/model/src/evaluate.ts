import { LinesightError } from '@linesight/protocol';
import { OnnxModel, type AnomalyMap } from '@linesight/vision';
import { defectCells, maskCoverage } from './mask-coverage.ts';
import { auroc, computeMetrics, type EvalMetrics } from './metrics.ts';
import type { TrainingSample } from './training-sample.ts';

/** Metrics of a model on a labelled set, with the AUROC of each defect class against the good images. */
export type ModelEvaluation = EvalMetrics & {
  perClass: Record<string, number | null>;
  /**
   * AUROC of the model's anomaly map against the defect masks, per map cell
   * (a cell is a defect when at least a quarter of its pixels are); null when
   * no sample has a mask or the model gives no map.
   */
  pixelAuroc: number | null;
};

/** Options of an evaluation. */
export interface EvaluateOptions {
  /**
   * Encoded defect masks (white = defect), one per sample or undefined; the
   * same fill resize as the image. The samples' own `mask` unless given.
   */
  masks?: readonly (Uint8Array | undefined)[];
  /** Threads ONNX Runtime may use; 1 unless given. */
  intraOpNumThreads?: number;
  onProgress?: (done: number, total: number) => void;
  /** Called with each sample's score as it is computed (to compare two models' verdicts image by image). */
  onScore?: (index: number, score: number) => void;
}

/**
 * Scores every sample with the model exactly as a device would (its own
 * contract's preprocessing, ONNX Runtime) and computes metrics at the
 * contract's threshold. Throws ERR_DATASET if a sample cannot be decoded.
 */
export async function evaluateModel(
  onnxBytes: Uint8Array,
  samples: readonly TrainingSample[],
  options: EvaluateOptions = {},
): Promise<ModelEvaluation> {
  const model = await OnnxModel.load(onnxBytes, {
    intraOpNumThreads: options.intraOpNumThreads ?? 1,
  });
  try {
    const scores: number[] = [];
    const cellScores: number[] = [];
    const cellLabels: boolean[] = [];
    for (const [index, sample] of samples.entries()) {
      let map: AnomalyMap | undefined;
      try {
        const scored = await model.scoreImage(sample.image);
        scores.push(scored.score);
        options.onScore?.(index, scored.score);
        map = scored.map;
      } catch (cause) {
        if (cause instanceof LinesightError && cause.code === 'ERR_IMAGE_DECODE') {
          throw new LinesightError(
            'ERR_DATASET',
            `sample ${index} (${sample.label}/${sample.className}) is not a readable image`,
            {
              cause,
              details: { index, label: sample.label, className: sample.className },
            },
          );
        }
        throw cause;
      }
      const mask = options.masks !== undefined ? options.masks[index] : sample.mask;
      if (map !== undefined && mask !== undefined) {
        const labels = await maskCells(
          mask,
          model.contract.inputSpec.width,
          model.contract.inputSpec.height,
          map,
        );
        if (labels !== undefined) {
          for (let i = 0; i < labels.length; i++) {
            cellScores.push(map.data[i] as number);
            cellLabels.push(labels[i] as boolean);
          }
        }
      }
      options.onProgress?.(index + 1, samples.length);
    }
    const labels = samples.map((s) => s.label === 'defect');
    const perClass: Record<string, number | null> = {};
    const good = samples.flatMap((s, i) => (s.label === 'good' ? [i] : []));
    for (const className of [
      ...new Set(samples.filter((s) => s.label === 'defect').map((s) => s.className)),
    ].sort()) {
      const members = samples.flatMap((s, i) =>
        s.label === 'defect' && s.className === className ? [i] : [],
      );
      const subset = [...good, ...members];
      perClass[className] = auroc(
        subset.map((i) => scores[i] as number),
        subset.map((i) => labels[i] as boolean),
      );
    }
    return {
      ...computeMetrics(scores, labels, model.contract.threshold),
      perClass,
      pixelAuroc: cellScores.length === 0 ? null : auroc(cellScores, cellLabels),
    };
  } finally {
    await model.close();
  }
}

/** Which cells of the map a mask marks as defect; undefined if the mask cannot be read. */
async function maskCells(
  mask: Uint8Array,
  width: number,
  height: number,
  map: AnomalyMap,
): Promise<boolean[] | undefined> {
  // A broken mask only costs its pixel labels; the image is still scored.
  const coverage = await maskCoverage(mask, width, height, map.width, map.height);
  return coverage === undefined ? undefined : defectCells(coverage);
}
