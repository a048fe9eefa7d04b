import type { ModelContract } from '@linesight/vision';
import type { CellHead } from './cell-head.ts';
import { GraphBuilder, encodeModel, intAttr, intsAttr, stringAttr } from './onnx-graph.ts';
import { smoothMapGraph } from './padim-map.ts';
import { MAP_HEAD_CLIP, type MapHeadParams } from './map-head.ts';
import type { PadimNeighbours } from './padim-neighbours.ts';
import { medianRank, padimGrid, type PadimParams } from './padim.ts';
import {
  ENERGY_EPSILON,
  PYRAMID_KERNEL_SIZE,
  VARIANCE_EPSILON,
  baseChannels,
  checkGeometry,
  featureChannels,
  gridSide,
  type PyramidGeometry,
} from './pyramid-features.ts';

/** Everything the exported pyramid defect model computes with: a cell classifier or a PaDiM scorer. */
export type PyramidModelParams = CellClassifierParams | PadimModelParams;

/** The pyramid features scored by a per-position Gaussian of good parts (anomaly mode). */
export interface PadimModelParams {
  kind: 'padim';
  /** Base features only (`relative` unset): the scorer makes pooled features relative itself. */
  geometry: PyramidGeometry;
  padim: PadimParams;
}

/** The pyramid features standardized per cell and scored by a small cell classifier. */
export interface CellClassifierParams {
  kind?: 'cell-classifier';
  geometry: PyramidGeometry;
  /** Per channel and cell mean of good training features (channels x cells). */
  featureMean: Float32Array;
  /** Per channel and cell 1/std of good training features. */
  featureInvStd: Float32Array;
  /** The classifier also sees the novelty channel (see `standardize.ts`); false unless given. */
  novelty?: boolean;
  head: CellHead;
  /** Also score with PaDiM and add the two normalized scores (see `fuseScores`). */
  fusion?: ScoreFusion;
}

/**
 * The sum of the classifier's and PaDiM's image scores, each minus its mean
 * on good validation images and times a scale (1/std for the classifier,
 * weight/std for PaDiM): the two see defects differently (like the defects
 * shown vs unlike any good part), and their normalized sum ranks better than
 * either.
 */
export interface ScoreFusion {
  padim: PadimParams;
  classifierMean: number;
  classifierScale: number;
  padimMean: number;
  padimScale: number;
  /**
   * Trained on defect masks: the model's map comes from it instead of from
   * PaDiM's distances (see `map-head.ts`); the score is unchanged. Unset when
   * the training set had no masks (and in models trained before it).
   */
  mapHead?: MapHeadParams;
}

/** The fused score, in float32 steps as the graph computes it. */
export function fuseScores(classifier: number, padim: number, f: ScoreFusion): number {
  const term = (v: number, mean: number, scale: number) =>
    Math.fround(Math.fround(v - Math.fround(mean)) * Math.fround(scale));
  return Math.fround(
    term(classifier, f.classifierMean, f.classifierScale) + term(padim, f.padimMean, f.padimScale),
  );
}

/**
 * Exports the pyramid defect model as ONNX (opset 13), node for node what
 * `pyramidModelForward` computes: per-image normalization -> pyramid of
 * reflect-padded 5x5 filter banks -> signed energies pooled to cells -> log
 * (-> and each channel minus its mean over the part, when `relative`)
 * -> per-cell standardization -> 1x1 MLP = cell logit map; score =
 * log-mean-exp of the map. With PaDiM params the features are instead pooled
 * 2x2 (peak channels by their maximum when asked), made relative, and the
 * map is each cell's distance to its nearest good neighbour in the Gaussian's
 * whitened space (`padim-neighbours.ts`), or in models trained before those
 * its Mahalanobis distance squared (`padim.ts`); score = the map's maximum,
 * or the mean of its top cells (minus its median cell).
 */
export function exportPyramidModelOnnx(
  params: PyramidModelParams,
  contract: ModelContract,
): Uint8Array {
  const { geometry } = params;
  checkGeometry(geometry);
  const { size, levels, kernels } = geometry;
  const grid = gridSide(geometry);
  const channels = featureChannels(geometry);
  const k = kernels.length;
  const n = PYRAMID_KERNEL_SIZE;
  const pad = (n - 1) / 2;
  const { inputSpec, outputs } = contract;
  if (inputSpec.channels !== 1 || inputSpec.width !== size || inputSpec.height !== size)
    throw new RangeError('contract input spec does not match the model geometry');

  const g = new GraphBuilder(contract.name ?? 'pyramid');
  const image = g.input(inputSpec.inputName, [1, 1, size, size]);
  const spatial = [intsAttr('axes', [2, 3]), intAttr('keepdims', 1)];
  const mean = g.op('ReduceMean', [image], spatial, 'image_mean');
  const centred = g.op('Sub', [image, mean], [], 'centred');
  const variance = g.op('ReduceMean', [g.op('Mul', [centred, centred])], spatial, 'image_variance');
  const std = g.op(
    'Sqrt',
    [g.op('Add', [variance, g.weight('variance_epsilon', [], Float32Array.of(VARIANCE_EPSILON))])],
    [],
    'image_std',
  );
  let level = g.op('Div', [centred, std], [], 'level_0');
  const pads = g.int64s('reflect_pads', [8], [0, 0, pad, pad, 0, 0, pad, pad]);
  // Each kernel twice, the second time negated: Relu of the two halves is the positive
  // and the negative response (max(-r, 0) = max(r, 0) - r), in one convolution whose
  // Relu ONNX Runtime fuses, so the full-resolution planes stay in its blocked layout.
  const bank = new Float32Array(2 * k * n * n);
  kernels.forEach((kernel, i) => {
    bank.set(kernel.weights, i * n * n);
    bank.set(
      kernel.weights.map((w) => -w),
      (k + i) * n * n,
    );
  });
  const bankName = g.weight('bank', [2 * k, 1, n, n], bank);
  const epsilon = g.weight('energy_epsilon', [], Float32Array.of(ENERGY_EPSILON));
  const energies: string[] = [];
  const peaks: string[] = [];
  const maxPoolLevels = Math.min(geometry.maxPoolLevels ?? 0, levels - 1);
  for (let l = 0; l < levels; l++) {
    if (l > 0) {
      level = g.op(
        'AveragePool',
        [level],
        [intsAttr('kernel_shape', [2, 2]), intsAttr('strides', [2, 2])],
        `level_${l}`,
      );
    }
    const padded = g.op('Pad', [level, pads], [stringAttr('mode', 'reflect')], `padded_${l}`);
    const response = g.op(
      'Conv',
      [padded, bankName],
      [intsAttr('kernel_shape', [n, n])],
      `response_${l}`,
    );
    const signedResponse = g.op('Relu', [response], [], `signed_response_${l}`);
    const factor = size / 2 ** l / grid;
    const window = [
      intsAttr('kernel_shape', [factor, factor]),
      intsAttr('strides', [factor, factor]),
    ];
    if (l < maxPoolLevels) {
      const peak = g.op('MaxPool', [signedResponse], window, `peak_${l}`);
      peaks.push(g.op('Log', [g.op('Add', [peak, epsilon])], [], `log_peak_${l}`));
    }
    const energy =
      factor > 1 ? g.op('AveragePool', [signedResponse], window, `energy_${l}`) : signedResponse;
    energies.push(g.op('Log', [g.op('Add', [energy, epsilon])], [], `log_energy_${l}`));
  }
  const base = g.op(
    'Concat',
    [...energies, ...peaks, level],
    [intAttr('axis', 1)],
    geometry.relative === true ? 'base_features' : 'features',
  );
  if (params.kind === 'padim') {
    const passes = params.padim.mapBlurPasses;
    const padim = padimScorer(g, base, geometry, params.padim, grid, {
      map: passes === undefined ? (outputs.map ?? 'map') : 'padim_map',
      score: outputs.score,
    });
    g.output(padim.score, [1]);
    if (outputs.map !== undefined) {
      if (passes === undefined) g.output(padim.map, [1, 1, padim.grid, padim.grid]);
      else
        g.output(smoothMapGraph(g, padim.map, padim.grid, passes, grid, outputs.map), [
          1,
          1,
          grid,
          grid,
        ]);
    }
    return encodeModel(g.build('Linesight pyramid anomaly model (PaDiM)'), contract);
  }
  const head = params.head;
  const features =
    geometry.relative === true
      ? g.op(
          'Concat',
          [base, g.op('Sub', [base, g.op('ReduceMean', [base], spatial, 'part_mean')])],
          [intAttr('axis', 1)],
          'features',
        )
      : base;
  const z = g.op(
    'Mul',
    [
      g.op('Sub', [
        features,
        g.weight('feature_mean', [1, channels, grid, grid], params.featureMean),
      ]),
      g.weight('feature_inv_std', [1, channels, grid, grid], params.featureInvStd),
    ],
    [],
    'standardized',
  );
  const headInput =
    params.novelty === true
      ? g.op(
          'Concat',
          [
            z,
            g.op(
              'Log',
              [
                g.op('Add', [
                  // The mean over channels as a 1x1 convolution: ONNX Runtime's ReduceMean
                  // over the channel axis took 0.6 ms here, the convolution a few hundredths.
                  g.op(
                    'Conv',
                    [
                      g.op('Mul', [z, z]),
                      g.weight(
                        'novelty_mean',
                        [1, channels, 1, 1],
                        new Float32Array(channels).fill(1 / channels),
                      ),
                    ],
                    [intsAttr('kernel_shape', [1, 1])],
                  ),
                  g.weight('one', [], Float32Array.of(1)),
                ]),
              ],
              [],
              'novelty',
            ),
          ],
          [intAttr('axis', 1)],
          'head_input',
        )
      : z;
  const map = cellMlpGraph(
    g,
    headInput,
    head,
    'head',
    params.fusion === undefined ? (outputs.map ?? 'map') : 'classifier_map',
  );
  const lse = g.op(
    'ReduceLogSumExp',
    [map],
    [intsAttr('axes', [1, 2, 3]), intAttr('keepdims', 0)],
    'log_sum_exp',
  );
  const fusion = params.fusion;
  const classifierScore = g.op(
    'Sub',
    [lse, g.weight('log_cells', [1], Float32Array.of(Math.log(grid * grid)))],
    [],
    fusion === undefined ? outputs.score : 'classifier_score',
  );
  let score = classifierScore;
  let outputMap = map;
  if (fusion !== undefined) {
    // (classifier - mean) * scale + (padim - mean) * scale, as fuseScores computes it.
    const padim = padimScorer(g, base, geometry, fusion.padim, grid, {
      map: 'padim_map',
      score: 'padim_score',
    });
    const constant = (name: string, value: number) =>
      g.weight(`fusion_${name}`, [1], Float32Array.of(value));
    const cm = constant('classifier_mean', fusion.classifierMean);
    const cs = constant('classifier_scale', fusion.classifierScale);
    const pm = constant('padim_mean', fusion.padimMean);
    const ps = constant('padim_scale', fusion.padimScale);
    score = g.op(
      'Add',
      [
        g.op('Mul', [g.op('Sub', [classifierScore, cm]), cs]),
        g.op('Mul', [g.op('Sub', [padim.score, pm]), ps]),
      ],
      [],
      outputs.score,
    );
    // The map is the map head's when the training set had masks, else PaDiM's, at the
    // classifier's grid: either localizes defects (MTD pixel AUROC 0.90-0.92 and 0.73-0.82)
    // where the classifier's cell logits mostly rank images (0.51-0.55).
    const passes = fusion.padim.mapBlurPasses;
    outputMap =
      fusion.mapHead !== undefined
        ? mapHeadGraph(g, padim, fusion.padim, fusion.mapHead, grid, outputs.map ?? 'map')
        : passes === undefined
          ? upsampleNearest(g, padim.map, padim.grid, grid, outputs.map ?? 'map')
          : smoothMapGraph(g, padim.map, padim.grid, passes, grid, outputs.map ?? 'map');
  }
  g.output(score, [1]);
  if (outputs.map !== undefined) g.output(outputMap, [1, 1, grid, grid]);
  return encodeModel(g.build('Linesight pyramid defect model'), contract);
}

/**
 * Appends the PaDiM scorer to base features [1, C, G, G]: 2x2 pool (average,
 * or maximum for the peak channels), minus the part's mean, minus the good
 * mean per cell, whitened per cell (one grouped Conv, see `perCellProduct`);
 * distance = sum of squares; map = the distance to the nearest neighbour when
 * the model has neighbours, else the distance; score = the map's maximum, or
 * the mean of its top cells (minus the median cell).
 */
function padimScorer(
  g: GraphBuilder,
  base: string,
  geometry: PyramidGeometry,
  padim: PadimParams,
  featureGrid: number,
  names: { map: string; score: string },
): PadimNodes {
  const { channels, grid } = padim;
  const cells = grid * grid;
  if (padimGrid(featureGrid) !== grid)
    throw new RangeError(`PaDiM grid ${grid} does not match feature grid ${featureGrid}`);
  if (channels !== baseChannels(geometry))
    throw new RangeError(
      `PaDiM has ${channels} channels, the geometry gives ${baseChannels(geometry)} base channels`,
    );
  const pool = featureGrid / grid;
  const window = [intsAttr('kernel_shape', [pool, pool]), intsAttr('strides', [pool, pool])];
  const peaks = padim.maxPooled;
  let pooled = base;
  if (pool > 1 && peaks === undefined) {
    pooled = g.op('AveragePool', [base], window, 'padim_pooled');
  } else if (pool > 1 && peaks !== undefined) {
    // The peak channels by their maximum, the others by their mean (as padimFeatures).
    const average = g.op('AveragePool', [base], window, 'padim_average');
    const end = peaks.first + peaks.count;
    const parts = [
      ...(peaks.first > 0 ? [channelSlice(g, average, 0, peaks.first, 'padim_before_peaks')] : []),
      g.op(
        'MaxPool',
        [channelSlice(g, base, peaks.first, end, 'padim_peak_channels')],
        window,
        'padim_peaks',
      ),
      ...(end < channels ? [channelSlice(g, average, end, channels, 'padim_after_peaks')] : []),
    ];
    pooled = g.op('Concat', parts, [intAttr('axis', 1)], 'padim_pooled');
  }
  const spatial = [intsAttr('axes', [2, 3]), intAttr('keepdims', 1)];
  const relative = g.op(
    'Sub',
    [pooled, g.op('ReduceMean', [pooled], spatial, 'padim_part_mean')],
    [],
    'padim_relative',
  );
  // [1, C, G, G] -> [C, cells] -> [cells, C] -> [cells, 1, C]
  const flat = g.op('Reshape', [relative, g.int64s('padim_flat_shape', [2], [channels, cells])]);
  const rows = g.op(
    'Reshape',
    [
      g.op('Transpose', [flat], [intsAttr('perm', [1, 0])]),
      g.int64s('padim_row_shape', [3], [cells, 1, channels]),
    ],
    [],
    'padim_cells',
  );
  const centred = g.op(
    'Sub',
    [rows, g.weight('padim_mean', [cells, 1, channels], padim.mean)],
    [],
    'padim_centred',
  );
  // With neighbours, their projections W b are extra columns of the same product.
  const neighbours = padim.neighbours;
  const product = perCellProduct(
    g,
    centred,
    padim,
    neighbours === undefined ? 'padim_whitened' : 'padim_product',
  );
  const whitened =
    neighbours === undefined
      ? product.node
      : channelSlice(g, product.node, 0, channels, 'padim_whitened', 2);
  const distance = g.op(
    'ReduceSum',
    [g.op('Mul', [whitened, whitened]), g.int64s('padim_sum_axes', [1], [2])],
    [intAttr('keepdims', 0)],
    'padim_distance',
  );
  // The map (and the score) is each cell's distance to its nearest good neighbour when the
  // model has neighbours, else the Gaussian distance.
  const map =
    neighbours === undefined
      ? g.op(
          'Reshape',
          [distance, g.int64s('padim_map_shape', [4], [1, 1, grid, grid])],
          [],
          names.map,
        )
      : neighbourMapGraph(
          g,
          channelSlice(g, product.node, channels, product.width, 'padim_neighbour_dot', 2),
          distance,
          neighbours,
          grid,
          names.map,
        );
  const score = topCellsScore(g, map, cells, padim, names.score);
  return { map, score, grid, centred, distance };
}

/**
 * Each cell's centred row [cells, 1, C] times its whitening matrix, with the
 * neighbours' projections as extra columns when there are any: [cells, 1,
 * width], width = C + count, returned with the node. One grouped 1x1 Conv (a
 * group per cell), which ONNX Runtime runs faster than the batched MatMul of
 * the same product (1 thread, 256 cells of 97 channels: 0.58 against 1.31 ms
 * with 32 neighbours, 0.49 against 0.54 ms without).
 */
function perCellProduct(
  g: GraphBuilder,
  centred: string,
  padim: PadimParams,
  name: string,
): { node: string; width: number } {
  const { channels, grid, whitening, neighbours } = padim;
  const cells = grid * grid;
  const count = neighbours?.count ?? 0;
  const width = channels + count;
  // Conv weight [cells * width, C, 1, 1]: output channel k * width + j of input channel a.
  const weights = new Float32Array(cells * width * channels);
  for (let k = 0; k < cells; k++)
    for (let a = 0; a < channels; a++) {
      for (let j = 0; j < channels; j++)
        weights[(k * width + j) * channels + a] = whitening[
          (k * channels + a) * channels + j
        ] as number;
      if (neighbours !== undefined)
        for (let j = 0; j < count; j++)
          weights[(k * width + channels + j) * channels + a] = neighbours.projection[
            (k * channels + a) * count + j
          ] as number;
    }
  const conv = g.op(
    'Conv',
    [
      g.op('Reshape', [centred, g.int64s('padim_groups_shape', [4], [1, cells * channels, 1, 1])]),
      g.weight('padim_whitening', [cells * width, channels, 1, 1], weights),
    ],
    [intAttr('group', cells), intsAttr('kernel_shape', [1, 1])],
    'padim_grouped_product',
  );
  const node = g.op(
    'Reshape',
    [conv, g.int64s('padim_product_shape', [3], [cells, 1, width])],
    [],
    name,
  );
  return { node, width };
}

/** What the PaDiM scorer's graph leaves for others to read. */
interface PadimNodes {
  /** [1, 1, grid, grid] distances. */
  map: string;
  score: string;
  grid: number;
  /** [cells, 1, channels] pooled relative features minus the good mean. */
  centred: string;
  /** [cells] distances. */
  distance: string;
}

/**
 * Each cell's squared distance to its nearest good neighbour
 * (`padim-neighbours.ts`): |z|^2 + min over neighbours of (|b|^2 - 2 z.b),
 * from the dot products z.b [cells, 1, count]: [1, 1, grid, grid].
 */
function neighbourMapGraph(
  g: GraphBuilder,
  dot: string,
  distance: string,
  neighbours: PadimNeighbours,
  grid: number,
  name: string,
): string {
  const cells = grid * grid;
  const { count } = neighbours;
  const offsets = g.op(
    'Add',
    [
      g.weight('padim_neighbour_norms', [cells, 1, count], neighbours.norms),
      g.op('Mul', [dot, g.weight('padim_minus_two', [], Float32Array.of(-2))]),
    ],
    [],
    'padim_neighbour_offsets',
  );
  const nearest = g.op(
    'ReduceMin',
    [offsets],
    [intsAttr('axes', [2]), intAttr('keepdims', 0)],
    'padim_neighbour_nearest',
  );
  return g.op(
    'Reshape',
    [
      g.op('Add', [distance, nearest], [], 'padim_neighbour_distance'),
      g.int64s('padim_neighbour_map_shape', [4], [1, 1, grid, grid]),
    ],
    [],
    name,
  );
}

/**
 * The image score of a [1, 1, grid, grid] map: its maximum, or the mean of its
 * `scoreTop` largest cells, minus its median cell when asked (one TopK down to
 * the median), as `padimScore`.
 */
function topCellsScore(
  g: GraphBuilder,
  map: string,
  cells: number,
  padim: PadimParams,
  name: string,
): string {
  const top = Math.min(padim.scoreTop ?? 1, cells);
  if (top <= 1 && padim.scoreMinusMedian !== true)
    return g.op('ReduceMax', [map], [intsAttr('axes', [1, 2, 3]), intAttr('keepdims', 0)], name);
  const median = medianRank(cells);
  const k = padim.scoreMinusMedian === true ? Math.max(top, median + 1) : top;
  const [largest] = g.opOutputs(
    'TopK',
    [
      g.op('Reshape', [map, g.int64s('padim_cells_shape', [2], [1, cells])]),
      g.int64s('padim_top_k', [1], [k]),
    ],
    [intAttr('axis', 1)],
    ['padim_largest', 'padim_largest_indices'],
  ) as [string, string];
  const high = g.op(
    'ReduceMean',
    [channelSlice(g, largest, 0, top, 'padim_top_cells')],
    [intsAttr('axes', [1]), intAttr('keepdims', 0)],
    padim.scoreMinusMedian === true ? 'padim_top_mean' : name,
  );
  if (padim.scoreMinusMedian !== true) return high;
  return g.op(
    'Sub',
    [
      high,
      g.op('Reshape', [
        channelSlice(g, largest, median, median + 1, 'padim_median_cell'),
        g.int64s('padim_median_shape', [1], [1]),
      ]),
    ],
    [],
    name,
  );
}

/**
 * Appends the map head (see `map-head.ts`): PaDiM's centred cells times the
 * inverse spread, clipped, as planes beside log(1 + distance), a 1x1 MLP,
 * blurred and upsampled as PaDiM's map, then a sigmoid: [1, 1, to, to].
 */
function mapHeadGraph(
  g: GraphBuilder,
  padimNodes: PadimNodes,
  padim: PadimParams,
  mapHead: MapHeadParams,
  to: number,
  name: string,
): string {
  const { channels, grid } = padim;
  const cells = grid * grid;
  const { head } = mapHead;
  if (head.inputs !== channels + 1)
    throw new RangeError(`map head has ${head.inputs} inputs, PaDiM gives ${channels + 1}`);
  const z = g.op(
    'Clip',
    [
      g.op('Mul', [
        padimNodes.centred,
        g.weight('map_head_inv_std', [cells, 1, channels], mapHead.invStd),
      ]),
      g.weight('map_head_clip_min', [], Float32Array.of(-MAP_HEAD_CLIP)),
      g.weight('map_head_clip_max', [], Float32Array.of(MAP_HEAD_CLIP)),
    ],
    [],
    'map_head_z',
  );
  // [cells, 1, C] -> [cells, C] -> [C, cells] -> [1, C, G, G]
  const planes = g.op('Reshape', [
    g.op(
      'Transpose',
      [g.op('Reshape', [z, g.int64s('map_head_rows_shape', [2], [cells, channels])])],
      [intsAttr('perm', [1, 0])],
    ),
    g.int64s('map_head_planes_shape', [4], [1, channels, grid, grid]),
  ]);
  const logDistance = g.op('Reshape', [
    g.op('Log', [
      g.op('Add', [padimNodes.distance, g.weight('map_head_one', [], Float32Array.of(1))]),
    ]),
    g.int64s('map_head_distance_shape', [4], [1, 1, grid, grid]),
  ]);
  const input = g.op('Concat', [planes, logDistance], [intAttr('axis', 1)], 'map_head_input');
  const logits = cellMlpGraph(g, input, head, 'map_head', 'map_head_logits');
  return g.op(
    'Sigmoid',
    [smoothMapGraph(g, logits, grid, mapHead.mapBlurPasses, to, 'map_head_smoothed')],
    [],
    name,
  );
}

/**
 * A cell MLP as two 1x1 convolutions over [1, inputs, G, G] (inputs -> hidden,
 * Relu, -> 1): [1, 1, G, G] logits named `name`, weights named `prefix`_w1 ...
 */
function cellMlpGraph(
  g: GraphBuilder,
  input: string,
  head: CellHead,
  prefix: string,
  name: string,
): string {
  const hidden = g.op(
    'Relu',
    [
      g.op(
        'Conv',
        [
          input,
          g.weight(`${prefix}_w1`, [head.hidden, head.inputs, 1, 1], head.w1),
          g.weight(`${prefix}_b1`, [head.hidden], head.b1),
        ],
        [intsAttr('kernel_shape', [1, 1])],
      ),
    ],
    [],
    `${prefix}_hidden`,
  );
  return g.op(
    'Conv',
    [
      hidden,
      g.weight(`${prefix}_w2`, [1, head.hidden, 1, 1], head.w2),
      g.weight(`${prefix}_b2`, [1], Float32Array.of(head.b2)),
    ],
    [intsAttr('kernel_shape', [1, 1])],
    name,
  );
}

/** Entries start..end-1 along axis 1 (channels of [1, C, H, W], cells of [1, N]). */
function channelSlice(
  g: GraphBuilder,
  x: string,
  start: number,
  end: number,
  name: string,
  axis = 1,
): string {
  return g.op(
    'Slice',
    [
      x,
      g.int64s(`${name}_start`, [1], [start]),
      g.int64s(`${name}_end`, [1], [end]),
      g.int64s(`${name}_axes`, [1], [axis]),
    ],
    [],
    name,
  );
}

/** Nearest-neighbour upsampling of a [1, 1, from, from] map to [1, 1, to, to] (to a multiple of from). */
function upsampleNearest(
  g: GraphBuilder,
  map: string,
  from: number,
  to: number,
  name: string,
): string {
  const f = to / from;
  if (f === 1) return g.op('Identity', [map], [], name);
  const columns = g.op('Reshape', [map, g.int64s('upsample_split', [4], [from, 1, from, 1])]);
  const spread = g.op('Expand', [columns, g.int64s('upsample_expand', [4], [from, f, from, f])]);
  return g.op('Reshape', [spread, g.int64s('upsample_shape', [4], [1, 1, to, to])], [], name);
}
