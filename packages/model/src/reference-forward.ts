import { headCellLogits, logMeanExp } from './cell-head.ts';
import { mapHeadLogits } from './map-head.ts';
import { smoothMap } from './padim-map.ts';
import { neighbourMap } from './padim-neighbours.ts';
import {
  centreCells,
  distanceOfWhitened,
  padimFeatures,
  padimScore,
  whitenCells,
} from './padim.ts';
import { baseChannels, gridSide, pyramidFeatures } from './pyramid-features.ts';
import { fuseScores, type PadimModelParams, type PyramidModelParams } from './pyramid-graph.ts';
import { standardizeCells } from './standardize.ts';

/** A score and its anomaly map. */
export interface ScoredMap {
  score: number;
  map: { width: number; height: number; data: Float32Array };
}

/** The reference forward pass in TypeScript, mirroring the exported ONNX graph. */
export function pyramidModelForward(input: Float32Array, params: PyramidModelParams): ScoredMap {
  return scoreFeatures(pyramidFeatures(input, params.geometry).data, params);
}

/** The image score of pyramid features under `params`, as the exported graph computes it. */
export const scoreOf = (params: PyramidModelParams) => (f: Float32Array) =>
  scoreFeatures(f, params).score;

/** The graph after the pyramid features: what the trainer scores validation images with. */
export function scoreFeatures(f: Float32Array, params: PyramidModelParams): ScoredMap {
  const grid = gridSide(params.geometry);
  if (params.kind === 'padim') return padimForward(f, params).scored;
  const z = standardizeCells(f, grid * grid, params);
  const map = headCellLogits(params.head, z, grid * grid);
  const classifier = Math.fround(logMeanExp(map));
  const fusion = params.fusion;
  if (fusion === undefined)
    return { score: classifier, map: { width: grid, height: grid, data: map } };
  // As the graph: the fused image score, and the map head's map or PaDiM's at the
  // classifier's grid (already there when it is smoothed).
  const padim = padimForward(f, { kind: 'padim', geometry: params.geometry, padim: fusion.padim });
  const score = fuseScores(classifier, padim.scored.score, fusion);
  if (fusion.mapHead !== undefined) {
    const logits = mapHeadLogits(padim.pooled, fusion.padim, fusion.mapHead, padim.distance);
    const smoothed = smoothMap(logits, fusion.padim.grid, fusion.mapHead.mapBlurPasses, grid);
    return {
      score,
      map: { width: grid, height: grid, data: smoothed.map((v) => 1 / (1 + Math.exp(-v))) },
    };
  }
  const padimMapOut = padim.scored.map;
  const factor = grid / padimMapOut.width;
  const upsampled = new Float32Array(map.length);
  for (let y = 0; y < grid; y++)
    for (let x = 0; x < grid; x++)
      upsampled[y * grid + x] = padimMapOut.data[
        Math.floor(y / factor) * padimMapOut.width + Math.floor(x / factor)
      ] as number;
  return {
    score,
    map: { width: grid, height: grid, data: upsampled },
  };
}

/** PaDiM's part of the graph: the pooled features, their distances per cell, and the scored map. */
function padimForward(
  f: Float32Array,
  params: PadimModelParams,
): { pooled: Float32Array; distance: Float32Array; scored: ScoredMap } {
  const grid = gridSide(params.geometry);
  const pooled = padimFeatures(f, baseChannels(params.geometry), grid, params.padim.maxPooled);
  const centred = centreCells(pooled, params.padim);
  const distance = distanceOfWhitened(whitenCells(centred, params.padim), params.padim.channels);
  const neighbours = params.padim.neighbours;
  // The map is the nearest-neighbour distance when the model has neighbours (as the graph).
  const map =
    neighbours === undefined
      ? distance
      : neighbourMap(centred, distance, neighbours, params.padim.channels);
  const score = padimScore(map, params.padim.scoreTop, params.padim.scoreMinusMedian);
  const passes = params.padim.mapBlurPasses;
  if (passes !== undefined)
    return {
      pooled,
      distance,
      scored: {
        score,
        map: {
          width: grid,
          height: grid,
          data: smoothMap(map, params.padim.grid, passes, grid),
        },
      },
    };
  const side = params.padim.grid;
  return {
    pooled,
    distance,
    scored: { score, map: { width: side, height: side, data: map } },
  };
}
