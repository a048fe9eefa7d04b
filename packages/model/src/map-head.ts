import { adamStep } from './adam.ts';
import type { CellHead } from './cell-head.ts';
import { headCellLogits } from './cell-head.ts';
import { CELL_DEFECT_SHARE } from './mask-coverage.ts';
import { padimMap, type PadimParams } from './padim.ts';
import { createRandom, shuffleInPlace } from './random.ts';

/**
 * The map head: where on the part a defect is, learnt from defect masks.
 *
 * PaDiM's distance map says "unlike good parts here"; on MTD it ranks defect
 * pixels at 0.73-0.82 (pixel AUROC, 5 folds), weakest on MT_Uneven, whose
 * masks cover a large area of changed grinding texture that is not far from
 * good parts in every cell. When the training set has masks, a small per-cell
 * classifier learns, from the cells the masks mark, which of PaDiM's own
 * inputs matter: each PaDiM cell's pooled relative features standardized
 * against the good parts at that position (clipped to +-MAP_HEAD_CLIP), and
 * log(1 + its distance), through a 1x1 MLP (inputs -> 16 -> 1). It is
 * trained cell by cell (weighted logistic loss, defect and good cells
 * weighted half each; which cells are defects: `maskCellLabels`). Its logits, blurred and upsampled as PaDiM's
 * map and passed through a sigmoid, are the model's map (a defect score in
 * 0..1 per cell); the image score is not changed by it (adding its top cells to
 * the fused score did not rank images better on MTD).
 */
export interface MapHeadParams {
  /** Per cell and channel 1 / (std + MAP_HEAD_STD_FLOOR) of good parts' pooled relative features, PaDiM's cells x channels layout. */
  invStd: Float32Array;
  /** inputs = PaDiM's channels + 1 (the distance). */
  head: CellHead;
  /** 3x3 binomial blur passes before upsampling, as PaDiM's map. */
  mapBlurPasses: number;
}

/** Added to each standard deviation: a channel that hardly varies on good parts does not dominate. */
export const MAP_HEAD_STD_FLOOR = 0.05;
/** Standardized inputs are clipped to this magnitude (one extreme channel cannot swamp a cell). */
export const MAP_HEAD_CLIP = 10;
/** Fewer masked defect images than this: no map head (PaDiM's map stays the model's map). */
export const MIN_MASKED_DEFECTS = 5;
const HIDDEN = 16;
/** Epochs over the labelled cells, or more on a small training set so that Adam takes at least MIN_STEPS steps. */
const EPOCHS = 20;
const MIN_STEPS = 2000;
const BATCH = 512;
const LEARNING_RATE = 0.003;
const WEIGHT_DECAY = 1e-4;

/** A training image for the map head: PaDiM's pooled relative features (cells x channels) and, for a defect, its mask's coverage per cell. */
export interface MapHeadImage {
  pooled: Float32Array;
  coverage?: Float32Array;
}

/**
 * The map head's inputs for one image, as planes (channels + 1 planes of
 * cells, what `headCellLogits` and the graph's 1x1 convolutions read), in
 * float32 steps as the graph computes them.
 */
export function mapHeadInputs(
  pooled: Float32Array,
  distance: Float32Array,
  padim: PadimParams,
  invStd: Float32Array,
): Float32Array {
  const { channels } = padim;
  const cells = padim.grid * padim.grid;
  const z = new Float32Array((channels + 1) * cells);
  for (let k = 0; k < cells; k++) {
    for (let c = 0; c < channels; c++) {
      const j = k * channels + c;
      const centred = Math.fround((pooled[j] as number) - (padim.mean[j] as number));
      const v = Math.fround(centred * (invStd[j] as number));
      z[c * cells + k] = Math.min(MAP_HEAD_CLIP, Math.max(-MAP_HEAD_CLIP, v));
    }
    z[channels * cells + k] = Math.fround(Math.log(Math.fround((distance[k] as number) + 1)));
  }
  return z;
}

/** The map head's cell logits (PaDiM's grid) of one image's pooled relative features (and their PaDiM distances, when already computed). */
export function mapHeadLogits(
  pooled: Float32Array,
  padim: PadimParams,
  params: MapHeadParams,
  distance: Float32Array = padimMap(pooled, padim),
): Float32Array {
  const z = mapHeadInputs(pooled, distance, padim, params.invStd);
  return headCellLogits(params.head, z, padim.grid * padim.grid);
}

/**
 * Fits the map head on the training parts (good ones without coverage,
 * defects with their masks' coverage) against a fitted PaDiM. Plain
 * arithmetic in a fixed order: the same inputs and seed give the same
 * weights.
 */
export function fitMapHead(
  images: readonly MapHeadImage[],
  padim: PadimParams,
  options: {
    seed: number;
    mapBlurPasses: number;
    onEpoch?: (epoch: number, epochs: number) => void;
  },
): MapHeadParams {
  const { channels } = padim;
  const cells = padim.grid * padim.grid;
  const goods = images.filter((im) => im.coverage === undefined);
  if (goods.length < 2) throw new RangeError('fitMapHead needs at least 2 good images');
  // Spread of the good parts around PaDiM's mean, per cell and channel.
  const sums = new Float64Array(cells * channels);
  for (const im of goods)
    for (let j = 0; j < sums.length; j++) {
      const d = (im.pooled[j] as number) - (padim.mean[j] as number);
      sums[j] = (sums[j] as number) + d * d;
    }
  const invStd = new Float32Array(cells * channels);
  for (let j = 0; j < invStd.length; j++)
    invStd[j] = 1 / (Math.sqrt((sums[j] as number) / goods.length) + MAP_HEAD_STD_FLOOR);

  // One row of inputs per labelled cell (every cell of a good part is a good cell).
  const inputs = channels + 1;
  const rows: Float32Array[] = [];
  const labels: number[] = [];
  for (const im of images) {
    const z = mapHeadInputs(im.pooled, padimMap(im.pooled, padim), padim, invStd);
    const cellLabels = im.coverage === undefined ? undefined : maskCellLabels(im.coverage);
    for (let k = 0; k < cells; k++) {
      const label = cellLabels === undefined ? 0 : (cellLabels[k] as number);
      if (label < 0) continue;
      const row = new Float32Array(inputs);
      for (let c = 0; c < inputs; c++) row[c] = z[c * cells + k] as number;
      rows.push(row);
      labels.push(label);
    }
  }
  const positives = labels.reduce((a, v) => a + v, 0);
  const negatives = labels.length - positives;
  if (positives === 0 || negatives === 0)
    throw new RangeError('fitMapHead needs both defect and good cells');
  const weights = labels.map((y) => (y === 1 ? 0.5 / positives : 0.5 / negatives));

  const random = createRandom(options.seed);
  const head: CellHead = {
    inputs,
    hidden: HIDDEN,
    w1: Float32Array.from(
      { length: HIDDEN * inputs },
      () => (random() * 2 - 1) * Math.sqrt(6 / (inputs + HIDDEN)),
    ),
    b1: new Float32Array(HIDDEN),
    w2: Float32Array.from(
      { length: HIDDEN },
      () => (random() * 2 - 1) * Math.sqrt(6 / (HIDDEN + 1)),
    ),
    b2: 0,
  };
  trainCells(head, rows, labels, weights, random, options.onEpoch);
  return { invStd, head, mapBlurPasses: options.mapBlurPasses };
}

/**
 * The map head's label of each cell of a defect image from its mask's
 * coverage: 1 when the mask covers at least CELL_DEFECT_SHARE of the cell (as
 * pixel AUROC counts a defect cell), 0 when it leaves the cell empty, -1 (left
 * out) when it covers a little of it. A defect smaller than a quarter of every
 * cell teaches the head nothing. On MTD (5 folds) this gave pixel AUROC 0.918
 * +- 0.011; also labelling the cells that hold a quarter of a small defect's
 * pixels 0.912 +- 0.023 (for every defect) and 0.912 +- 0.022 (only for
 * defects with no cell covered by a quarter).
 */
export function maskCellLabels(coverage: Float32Array): Int8Array {
  return Int8Array.from(coverage, (share) =>
    share === 0 ? 0 : share >= CELL_DEFECT_SHARE ? 1 : -1,
  );
}

/** Adam on the weighted logistic loss of each cell (float64 gradients, float32 weights). */
function trainCells(
  head: CellHead,
  rows: readonly Float32Array[],
  labels: readonly number[],
  weights: readonly number[],
  random: () => number,
  onEpoch?: (epoch: number, epochs: number) => void,
): void {
  const { inputs, hidden, w1, b1, w2 } = head;
  const b2 = new Float32Array(1);
  const tensors = [w1, b1, w2, b2];
  const grads = tensors.map((t) => new Float64Array(t.length));
  const m = tensors.map((t) => new Float64Array(t.length));
  const v = tensors.map((t) => new Float64Array(t.length));
  const act = new Float64Array(hidden);
  const order = rows.map((_, i) => i);
  let step = 0;
  const epochs = Math.max(EPOCHS, Math.ceil(MIN_STEPS / Math.ceil(rows.length / BATCH)));
  for (let epoch = 0; epoch < epochs; epoch++) {
    shuffleInPlace(order, random);
    for (let start = 0; start < order.length; start += BATCH) {
      const end = Math.min(order.length, start + BATCH);
      for (const g of grads) g.fill(0);
      let weightSum = 0;
      for (let t = start; t < end; t++) weightSum += weights[order[t] as number] as number;
      for (let t = start; t < end; t++) {
        const i = order[t] as number;
        const x = rows[i] as Float32Array;
        let logit = b2[0] as number;
        for (let h = 0; h < hidden; h++) {
          let s = b1[h] as number;
          for (let c = 0; c < inputs; c++) s += (w1[h * inputs + c] as number) * (x[c] as number);
          act[h] = s > 0 ? s : 0;
          logit += (w2[h] as number) * (act[h] as number);
        }
        const p = 1 / (1 + Math.exp(-logit));
        const dz = ((weights[i] as number) / weightSum) * (p - (labels[i] as number));
        (grads[3] as Float64Array)[0] = ((grads[3] as Float64Array)[0] as number) + dz;
        for (let h = 0; h < hidden; h++) {
          const a = act[h] as number;
          const g2 = grads[2] as Float64Array;
          g2[h] = (g2[h] as number) + dz * a;
          if (a <= 0) continue;
          const dh = dz * (w2[h] as number);
          const g1b = grads[1] as Float64Array;
          g1b[h] = (g1b[h] as number) + dh;
          const g1 = grads[0] as Float64Array;
          for (let c = 0; c < inputs; c++)
            g1[h * inputs + c] = (g1[h * inputs + c] as number) + dh * (x[c] as number);
        }
      }
      step++;
      tensors.forEach((tensor, k) =>
        adamStep(
          tensor,
          grads[k] as Float64Array,
          m[k] as Float64Array,
          v[k] as Float64Array,
          step,
          LEARNING_RATE,
          WEIGHT_DECAY,
        ),
      );
    }
    onEpoch?.(epoch + 1, epochs);
  }
  head.b2 = b2[0] as number;
}

/** The training defects' coverages whose mask marks at least one cell: what the map head learns from. */
function markingMasks(
  coverage: ReadonlyMap<number, Float32Array>,
): [index: number, coverage: Float32Array][] {
  return [...coverage.entries()].filter(([, c]) => maskCellLabels(c).includes(1));
}

/** Training defects whose mask marks at least one cell (what the map head would learn from). */
export function maskedDefects(coverage: ReadonlyMap<number, Float32Array>): number {
  return markingMasks(coverage).length;
}

/**
 * The map head of a supervised training run, or why there is none: PaDiM's
 * pooled features of the real training images (good ones and the defects
 * whose masks could be read), fitted against the fused PaDiM.
 */
export function fitTrainingMapHead(
  train: readonly { features: Float32Array; defect: boolean; synthetic: boolean }[],
  coverage: ReadonlyMap<number, Float32Array>,
  padim: PadimParams,
  pool: (features: Float32Array) => Float32Array,
  options: { seed: number; onEpoch?: (epoch: number, epochs: number) => void },
):
  { params: MapHeadParams; masks: number } | { params?: undefined; reason: string; masks: number } {
  const masked = markingMasks(coverage);
  // Keyed by place in `train`: each must be a real defect (good images first, then defects).
  for (const [index] of masked) {
    const t = train[index];
    if (t === undefined || !t.defect || t.synthetic)
      throw new RangeError(`coverage ${index} is not a real training defect`);
  }
  if (masked.length < MIN_MASKED_DEFECTS)
    return {
      reason: `${masked.length} training defect images have a mask marking at least one cell (${MIN_MASKED_DEFECTS} needed): the map is PaDiM's`,
      masks: masked.length,
    };
  const images: MapHeadImage[] = [];
  for (const t of train) if (!t.defect && !t.synthetic) images.push({ pooled: pool(t.features) });
  for (const [index, c] of masked)
    images.push({
      pooled: pool((train[index] as { features: Float32Array }).features),
      coverage: c,
    });
  return {
    params: fitMapHead(images, padim, {
      seed: options.seed,
      mapBlurPasses: padim.mapBlurPasses ?? 0,
      ...(options.onEpoch !== undefined ? { onEpoch: options.onEpoch } : {}),
    }),
    masks: masked.length,
  };
}
