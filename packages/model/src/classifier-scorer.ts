import { setImmediate as yieldToEventLoop } from 'node:timers/promises';
import { mergeHeads, trainCellHead, type CellHead, type HeadExample } from './cell-head.ts';
import type { FittedScorer } from './fitted-scorer.ts';
import { HeadGradientPool } from './head-gradient-pool.ts';
import { featureChannels, gridSide, type PyramidGeometry } from './pyramid-features.ts';
import type { CellClassifierParams } from './pyramid-graph.ts';
import { round6 } from './round6.ts';
import { headInputs, standardizeCells } from './standardize.ts';
import type { TrainFeatures } from './training-features.ts';
import type { TrainingProgress } from './training-result.ts';

/** Added to each cell's feature std: a channel flat on good images cannot blow up. */
const STD_FLOOR = 0.05;
/** Share of the loss weight given to synthetic defects in supervised mode. */
const SYNTHETIC_LOSS_SHARE = 0.3;
const BATCH_SIZE = 16;
/** Adam step size of the cell classifier (0.01 measured better than 0.003 on MTD with relative features). */
const LEARNING_RATE = 0.01;

/**
 * Supervised mode: per-position standardization plus novelty channel, and a
 * cell classifier trained from image labels (real and synthetic defects).
 */
export async function fitClassifier(
  trainFeatures: readonly TrainFeatures[],
  geometry: PyramidGeometry,
  o: {
    seed: number;
    hidden: number;
    members: number;
    epochs: number;
    minTrainingSteps: number;
    threads: number;
    report: (progress: TrainingProgress) => void;
  },
): Promise<FittedScorer<CellClassifierParams>> {
  const { hidden, members, epochs, report } = o;
  const channels = featureChannels(geometry);
  const cells = gridSide(geometry) ** 2;
  const { mean: featureMean, invStd: featureInvStd } = cellStatistics(
    trainFeatures.filter((t) => !t.defect).map((t) => t.features),
    channels * cells,
  );
  const standardization = { featureMean, featureInvStd, novelty: true };
  const standardize = (f: Float32Array): Float32Array =>
    standardizeCells(f, cells, standardization);

  // Loss weights: good images carry half, defects the other half (real ones
  // most of it when there are any), so class sizes do not matter.
  const goods = trainFeatures.filter((t) => !t.defect).length;
  const reals = trainFeatures.filter((t) => t.defect && !t.synthetic).length;
  const synthetics = trainFeatures.filter((t) => t.synthetic).length;
  const syntheticShare = reals === 0 ? 1 : synthetics === 0 ? 0 : SYNTHETIC_LOSS_SHARE;
  const examples: HeadExample[] = trainFeatures.map((t) => ({
    z: standardize(t.features),
    defect: t.defect,
    weight: !t.defect
      ? 0.5 / goods
      : t.synthetic
        ? (0.5 * syntheticShare) / synthetics
        : (0.5 * (1 - syntheticShare)) / reals,
  }));
  const fitStarted = performance.now();
  let lastLoss: number | undefined;
  const stepsPerEpoch = Math.ceil(examples.length / BATCH_SIZE);
  const effectiveEpochs = Math.max(epochs, Math.ceil(o.minTrainingSteps / stepsPerEpoch));
  const heads: CellHead[] = [];
  // Two threads halve the classifier's training time, which grows with the data.
  const pool =
    o.threads > 1 ? HeadGradientPool.start(examples, cells, hidden, o.threads) : undefined;
  try {
    for (let member = 0; member < members; member++) {
      heads.push(
        await trainCellHead(examples, cells, headInputs(channels, standardization), {
          ...(pool !== undefined ? { batchGradients: pool.batchGradients } : {}),
          seed: o.seed * members + member,
          hidden,
          epochs: effectiveEpochs,
          batchSize: BATCH_SIZE,
          learningRate: LEARNING_RATE,
          onStep: async (step, steps) => {
            const done = member * steps + step;
            const total = members * steps;
            report({
              step: 'fit',
              done,
              total,
              epochs: effectiveEpochs * members,
              epoch: Math.ceil((done * effectiveEpochs * members) / total),
              ...(lastLoss === undefined ? {} : { loss: lastLoss }),
              elapsedMs: performance.now() - fitStarted,
            });
            if (step % 4 === 0) await yieldToEventLoop();
          },
          onEpoch: (_epoch, loss) => {
            lastLoss = loss;
          },
        }),
      );
    }
  } finally {
    await pool?.close();
  }
  const head = mergeHeads(heads);
  return {
    params: { kind: 'cell-classifier', geometry, ...standardization, head },
    summary: {
      scorer: 'cell-classifier',
      relativeFeatures: true,
      noveltyChannel: true,
      learningRate: LEARNING_RATE,
      hidden,
      members,
      epochs: effectiveEpochs,
      finalLoss: lastLoss === undefined ? null : round6(lastLoss),
      scoreUnit: 'logit (log-mean-exp of cell logits)',
    },
  };
}

/** Per-element mean and 1/(std + floor) over good feature vectors, summed in float64. */
function cellStatistics(
  features: readonly Float32Array[],
  length: number,
): { mean: Float32Array; invStd: Float32Array } {
  const sums = new Float64Array(length);
  const squares = new Float64Array(length);
  for (const f of features) {
    for (let j = 0; j < length; j++) {
      const v = f[j] as number;
      sums[j] = (sums[j] as number) + v;
      squares[j] = (squares[j] as number) + v * v;
    }
  }
  const n = features.length;
  const mean = new Float32Array(length);
  const invStd = new Float32Array(length);
  for (let j = 0; j < length; j++) {
    const m = (sums[j] as number) / n;
    mean[j] = m;
    invStd[j] = 1 / (Math.sqrt(Math.max(0, (squares[j] as number) / n - m * m)) + STD_FLOOR);
  }
  return { mean, invStd };
}
