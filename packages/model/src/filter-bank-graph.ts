import type { ModelContract } from '@linesight/vision';
import { GraphBuilder, encodeModel, intAttr, intsAttr } from './onnx-graph.ts';
import { filterBankGeometry, type FilterBankParams } from './filter-bank-reference.ts';

/**
 * Exports a fitted filter bank as ONNX, node for node what
 * `filterBankForward` computes:
 * Conv (the bank) -> Abs -> AveragePool (local energy) -> Sub mean -> Mul 1/std
 * -> Relu -> square -> 1x1 Conv (mean over filters) -> Sqrt = map;
 * AveragePool (score window) -> ReduceMax = score.
 */
export function exportFilterBankOnnx(
  params: FilterBankParams,
  contract: ModelContract,
): Uint8Array {
  const { kernelSize, mapWidth, mapHeight } = filterBankGeometry(params);
  const k = params.filters.length;
  if (params.scorePoolSize > mapWidth || params.scorePoolSize > mapHeight) {
    throw new RangeError(
      `score window ${params.scorePoolSize} is larger than the ${mapWidth}x${mapHeight} map`,
    );
  }
  const { inputSpec, outputs } = contract;
  if (
    inputSpec.channels !== 1 ||
    inputSpec.width !== params.inputWidth ||
    inputSpec.height !== params.inputHeight
  ) {
    throw new RangeError('contract input spec does not match the filter bank geometry');
  }
  const bank = new Float32Array(k * kernelSize * kernelSize);
  params.filters.forEach((f, i) => bank.set(f.weights, i * kernelSize * kernelSize));

  const g = new GraphBuilder(contract.name ?? 'filter-bank');
  const image = g.input(inputSpec.inputName, [1, 1, params.inputHeight, params.inputWidth]);
  const response = g.op(
    'Conv',
    [image, g.weight('bank', [k, 1, kernelSize, kernelSize], bank)],
    [
      intsAttr('kernel_shape', [kernelSize, kernelSize]),
      intsAttr('strides', [1, 1]),
      intsAttr('pads', [0, 0, 0, 0]),
    ],
    'response',
  );
  const magnitude = g.op('Abs', [response], [], 'magnitude');
  const energy = g.op(
    'AveragePool',
    [magnitude],
    [
      intsAttr('kernel_shape', [params.poolSize, params.poolSize]),
      intsAttr('strides', [params.poolStride, params.poolStride]),
    ],
    'energy',
  );
  const centred = g.op(
    'Sub',
    [energy, g.weight('channel_mean', [1, k, 1, 1], params.channelMean)],
    [],
    'centred',
  );
  const z = g.op(
    'Mul',
    [centred, g.weight('channel_inv_std', [1, k, 1, 1], params.channelInvStd)],
    [],
    'z',
  );
  const excess = g.op('Relu', [z], [], 'excess');
  const squared = g.op('Mul', [excess, excess], [], 'squared');
  const meanSquare = g.op(
    'Conv',
    [squared, g.weight('channel_average', [1, k, 1, 1], new Float32Array(k).fill(1 / k))],
    [intsAttr('kernel_shape', [1, 1])],
    'mean_square',
  );
  const map = g.op('Sqrt', [meanSquare], [], outputs.map ?? 'map');
  const window = g.op(
    'AveragePool',
    [map],
    [
      intsAttr('kernel_shape', [params.scorePoolSize, params.scorePoolSize]),
      intsAttr('strides', [1, 1]),
    ],
    'score_window',
  );
  const score = g.op(
    'ReduceMax',
    [window],
    [intsAttr('axes', [1, 2, 3]), intAttr('keepdims', 0)],
    outputs.score,
  );
  g.output(score, [1]);
  if (outputs.map !== undefined) g.output(map, [1, 1, mapHeight, mapWidth]);
  return encodeModel(g.build('Linesight filter-bank anomaly model'), contract);
}
