import { LinesightError } from '@linesight/protocol';
import { OnnxModel } from '@linesight/vision';
import { auroc, computeMetrics, type EvalMetrics } from './metrics.ts';
import type { TrainingSample } from './training-sample.ts';

/** Metrics of a model on a labelled set, with the AUROC of each defect class against the good images. */
export type ModelEvaluation = EvalMetrics & { perClass: Record<string, number | null> };

/**
 * Scores every sample with the model exactly as a device would (its own
 * contract's preprocessing, ONNX Runtime) and computes metrics at the
 * contract's threshold. Throws ERR_DATASET if a sample cannot be decoded.
 */
export async function evaluateModel(
  onnxBytes: Uint8Array,
  samples: readonly TrainingSample[],
): Promise<ModelEvaluation> {
  const model = await OnnxModel.load(onnxBytes);
  try {
    const scores: number[] = [];
    for (const [index, sample] of samples.entries()) {
      try {
        scores.push((await model.scoreImage(sample.image)).score);
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
    return { ...computeMetrics(scores, labels, model.contract.threshold), perClass };
  } finally {
    await model.close();
  }
}
