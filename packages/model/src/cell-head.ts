import { adamStep } from './adam.ts';
import { createRandom, shuffleInPlace } from './random.ts';

/**
 * A small per-cell classifier: a 1x1-convolution MLP (D -> H, Relu, -> 1)
 * over standardized cell features, whose cell logits are pooled into one
 * image logit by a log-mean-exp (a soft maximum: one hot cell dominates, but
 * every cell gets a gradient). Trained from image labels alone (multiple
 * instance learning), so no masks are needed.
 */
export interface CellHead {
  inputs: number;
  hidden: number;
  /** hidden x inputs, row-major. */
  w1: Float32Array;
  b1: Float32Array;
  /** hidden. */
  w2: Float32Array;
  b2: number;
}

/** One training image for the head: standardized features (inputs planes of cells) and weight. */
export interface HeadExample {
  z: Float32Array;
  defect: boolean;
  /** Loss weight (class balancing). */
  weight: number;
}

/** Options of head training. */
export interface HeadTrainingOptions {
  seed: number;
  hidden: number;
  epochs: number;
  batchSize?: number;
  learningRate?: number;
  weightDecay?: number;
  /** Called after each epoch with the mean weighted loss. */
  onEpoch?: (epoch: number, loss: number) => void | Promise<void>;
  /** Called after each mini-batch. */
  onStep?: (step: number, steps: number) => void | Promise<void>;
  /**
   * Computes the gradients of the parts of a batch (e.g. on worker threads,
   * see HeadGradientPool); in this thread when absent. Same numbers either way.
   */
  batchGradients?: BatchGradients;
}

/** Gradients (w1, b1, w2, b2) and weighted loss of a part of a batch. */
export interface PartGradients {
  grads: Float64Array[];
  lossSum: number;
  weightSum: number;
}

/** Computes the gradients of each part of a batch (lists of example indices) at the head's current weights. */
export type BatchGradients = (
  head: CellHead,
  parts: readonly (readonly number[])[],
) => Promise<PartGradients[]>;

/** The examples' features, labels and weights as gradient code reads them. */
export interface ExampleSource {
  z: (index: number) => Float32Array;
  defect: (index: number) => boolean;
  weight: (index: number) => number;
}

/**
 * Sums, over the examples of one part of a batch in order, the gradients of
 * the weighted logistic loss of the image logit (log-mean-exp of the cell
 * logits) with respect to the head's weights. `hiddenActs` is scratch
 * (hidden x cells).
 */
export function partGradients(
  head: CellHead,
  source: ExampleSource,
  indices: readonly number[],
  cells: number,
  hiddenActs: Float32Array,
): PartGradients {
  const { inputs, hidden } = head;
  const gw1 = new Float64Array(hidden * inputs);
  const gb1 = new Float64Array(hidden);
  const gw2 = new Float64Array(hidden);
  const gb2 = new Float64Array(1);
  let lossSum = 0;
  let weightSum = 0;
  for (const index of indices) {
    const z = source.z(index);
    const weight = source.weight(index);
    const logits = headCellLogits(head, z, cells, hiddenActs);
    const logit = logMeanExp(logits);
    const y = source.defect(index) ? 1 : 0;
    const p = 1 / (1 + Math.exp(-logit));
    lossSum += weight * -Math.log(Math.max(1e-12, y === 1 ? p : 1 - p));
    weightSum += weight;
    const dLogit = weight * (p - y);
    // d(logMeanExp)/d(cell) is the softmax over cells.
    let max = -Infinity;
    for (const v of logits) max = Math.max(max, v);
    let sum = 0;
    const soft = new Float64Array(cells);
    for (let i = 0; i < cells; i++) {
      soft[i] = Math.exp((logits[i] as number) - max);
      sum += soft[i] as number;
    }
    // Cells whose share of the gradient is negligible are skipped in the backward pass.
    const active: number[] = [];
    for (let i = 0; i < cells; i++) {
      soft[i] = (dLogit * (soft[i] as number)) / sum;
      if (Math.abs(soft[i] as number) > 1e-6 * Math.abs(dLogit)) active.push(i);
    }
    for (const i of active) gb2[0] = (gb2[0] as number) + (soft[i] as number);
    for (let k = 0; k < hidden; k++) {
      const wk = head.w2[k] as number;
      let gwk = 0;
      let gbk = 0;
      const dAct = new Float64Array(active.length);
      for (let j = 0; j < active.length; j++) {
        const i = active[j] as number;
        const a = hiddenActs[k * cells + i] as number;
        if (a <= 0) continue;
        const s = soft[i] as number;
        gwk += s * a;
        dAct[j] = s * wk;
        gbk += dAct[j] as number;
      }
      gw2[k] = (gw2[k] as number) + gwk;
      gb1[k] = (gb1[k] as number) + gbk;
      for (let c = 0; c < inputs; c++) {
        const base = c * cells;
        let g = 0;
        for (let j = 0; j < active.length; j++)
          g += (dAct[j] as number) * (z[base + (active[j] as number)] as number);
        gw1[k * inputs + c] = (gw1[k * inputs + c] as number) + g;
      }
    }
  }
  return { grads: [gw1, gb1, gw2, gb2], lossSum, weightSum };
}

/** Batch gradients computed in this thread, part after part. */
function localBatchGradients(
  examples: readonly HeadExample[],
  cells: number,
  hidden: number,
): BatchGradients {
  const hiddenActs = new Float32Array(hidden * cells);
  const source: ExampleSource = {
    z: (i) => (examples[i] as HeadExample).z,
    defect: (i) => (examples[i] as HeadExample).defect,
    weight: (i) => (examples[i] as HeadExample).weight,
  };
  return async (head, parts) =>
    parts.map((indices) => partGradients(head, source, indices, cells, hiddenActs));
}

/** Cell logits of one image (length cells) and, if asked, hidden activations (cells x hidden). */
export function headCellLogits(
  head: CellHead,
  z: Float32Array,
  cells: number,
  hiddenOut?: Float32Array,
): Float32Array {
  const { inputs: d, hidden: h, w1, b1, w2 } = head;
  const out = new Float32Array(cells);
  const acc = new Float64Array(cells);
  const act = new Float32Array(cells);
  // Accumulate plane by plane: inner loops run over contiguous cells.
  for (let k = 0; k < h; k++) {
    acc.fill(b1[k] as number);
    for (let c = 0; c < d; c++) {
      const w = w1[k * d + c] as number;
      const base = c * cells;
      for (let i = 0; i < cells; i++) acc[i] = (acc[i] as number) + w * (z[base + i] as number);
    }
    for (let i = 0; i < cells; i++) {
      const a = Math.fround(acc[i] as number);
      act[i] = a > 0 ? a : 0;
    }
    if (hiddenOut !== undefined) hiddenOut.set(act, k * cells);
    const wk = w2[k] as number;
    for (let i = 0; i < cells; i++) out[i] = (out[i] as number) + wk * (act[i] as number);
  }
  for (let i = 0; i < cells; i++) out[i] = Math.fround((out[i] as number) + head.b2);
  return out;
}

/** log(mean(exp(logits))), computed stably: the image logit. */
export function logMeanExp(logits: Float32Array): number {
  let max = -Infinity;
  for (const v of logits) max = Math.max(max, v);
  let sum = 0;
  for (const v of logits) sum += Math.exp(v - max);
  return max + Math.log(sum / logits.length);
}

/** Trains the head with Adam on weighted logistic loss; deterministic for a seed. Returns an exponential moving average of the weights. */
export async function trainCellHead(
  examples: readonly HeadExample[],
  cells: number,
  inputs: number,
  options: HeadTrainingOptions,
): Promise<CellHead> {
  const random = createRandom(options.seed);
  const hidden = options.hidden;
  const batchSize = options.batchSize ?? 16;
  const learningRate = options.learningRate ?? 0.003;
  const weightDecay = options.weightDecay ?? 1e-4;
  const scale1 = Math.sqrt(3 / inputs);
  const scale2 = Math.sqrt(3 / hidden);
  const head: CellHead = {
    inputs,
    hidden,
    w1: new Float32Array(hidden * inputs).map(() => (random() * 2 - 1) * scale1),
    b1: new Float32Array(hidden),
    w2: new Float32Array(hidden).map(() => (random() * 2 - 1) * scale2),
    b2: 0,
  };
  const b2 = new Float32Array(1);
  const params = [head.w1, head.b1, head.w2, b2];
  const ema = params.map((p) => Float32Array.from(p));
  const moment1 = params.map((p) => new Float64Array(p.length));
  const moment2 = params.map((p) => new Float64Array(p.length));
  const grads = params.map((p) => new Float64Array(p.length));
  const order = examples.map((_, i) => i);
  const steps = Math.ceil(examples.length / batchSize) * options.epochs;
  const local = localBatchGradients(examples, cells, hidden);
  const compute = options.batchGradients ?? local;
  let t = 0;
  for (let epoch = 0; epoch < options.epochs; epoch++) {
    shuffleInPlace(order, random);
    let lossSum = 0;
    let weightSum = 0;
    for (let start = 0; start < order.length; start += batchSize) {
      for (const g of grads) g.fill(0);
      head.b2 = b2[0] as number;
      const batch = order.slice(start, start + batchSize);
      // The gradient of a batch is defined as the sum of its two halves' gradients, in that
      // order, so that computing the halves on two threads gives the same bytes as on one.
      const half = Math.ceil(batch.length / 2);
      const parts = await compute(head, [batch.slice(0, half), batch.slice(half)]);
      for (const part of parts) {
        for (let pi = 0; pi < grads.length; pi++) {
          const g = grads[pi] as Float64Array;
          const pg = part.grads[pi] as Float64Array;
          for (let j = 0; j < g.length; j++) g[j] = (g[j] as number) + (pg[j] as number);
        }
        lossSum += part.lossSum;
        weightSum += part.weightSum;
      }
      t++;
      for (let pi = 0; pi < params.length; pi++) {
        const p = params[pi] as Float32Array;
        const g = grads[pi] as Float64Array;
        const m = moment1[pi] as Float64Array;
        const v = moment2[pi] as Float64Array;
        const e = ema[pi] as Float32Array;
        // Weight decay on the first layer's weights only.
        adamStep(p, g, m, v, t, learningRate, pi === 0 ? weightDecay : 0);
        for (let j = 0; j < p.length; j++) e[j] = 0.98 * (e[j] as number) + 0.02 * (p[j] as number);
      }
      await options.onStep?.(t, steps);
    }
    await options.onEpoch?.(epoch + 1, weightSum > 0 ? lossSum / weightSum : 0);
  }
  const [w1, b1, w2, eb2] = ema as [Float32Array, Float32Array, Float32Array, Float32Array];
  return { inputs, hidden, w1, b1, w2, b2: eb2[0] as number };
}

/**
 * Merges heads trained on the same inputs into one head whose cell logits
 * are the mean of theirs: hidden units side by side, output weights divided
 * by the number of heads.
 */
export function mergeHeads(heads: readonly CellHead[]): CellHead {
  const first = heads[0];
  if (first === undefined) throw new RangeError('no heads to merge');
  if (heads.length === 1) return first;
  if (heads.some((h) => h.inputs !== first.inputs))
    throw new RangeError('heads have different inputs');
  const hidden = heads.reduce((sum, h) => sum + h.hidden, 0);
  const w1 = new Float32Array(hidden * first.inputs);
  const b1 = new Float32Array(hidden);
  const w2 = new Float32Array(hidden);
  let offset = 0;
  let b2 = 0;
  for (const h of heads) {
    w1.set(h.w1, offset * first.inputs);
    b1.set(h.b1, offset);
    for (let k = 0; k < h.hidden; k++) w2[offset + k] = (h.w2[k] as number) / heads.length;
    b2 += h.b2 / heads.length;
    offset += h.hidden;
  }
  return { inputs: first.inputs, hidden, w1, b1, w2, b2 };
}
