// Tiny ONNX models for tests, built with the model package's graph builder (the one
// ONNX builder), so tests need no trained artifact.
import onnxProto from 'onnx-proto';
import { GraphBuilder, encodeModel, intAttr, intsAttr } from '@linesight/model';
import { CONTRACT_METADATA_KEY, type ModelContract } from '@linesight/vision';
import onnx = onnxProto.onnx;

/** Options for a tiny model: score = mean (or log of the mean) of the input, map = channel mean. */
export interface TinyModelOptions {
  width: number;
  height: number;
  channels?: 1 | 3;
  inputName?: string;
  score?: 'mean' | 'log-mean' | 'all-values';
  /** Adds the `map` output (the channel mean); default true. */
  map?: boolean;
  /** Stored as the contract when given; `null` stores none. */
  contract?: ModelContract | null;
  /** An operator name to put in the graph, e.g. to make it fail to load. */
  extraOp?: string;
  /**
   * Make runs slow: a chain of `steps` NxN MatMuls that depends on the input but not the
   * score; every run, or with `when: 'bright'` only runs on images of mean above 0.5 (others
   * run the chain at 1x1).
   */
  slow?: { size: number; steps: number; when?: 'always' | 'bright' };
}

/** A contract for a tiny model of the given size. */
export function tinyContract(width: number, height: number, channels: 1 | 3 = 1): ModelContract {
  return {
    schema: 'linesight.model/v1',
    kind: 'test-mean',
    inputSpec: {
      inputName: 'image',
      width,
      height,
      channels,
      layout: 'NCHW',
      resize: 'fill',
      scale: 1 / 255,
      mean: channels === 1 ? [0] : [0, 0, 0],
      std: channels === 1 ? [1] : [1, 1, 1],
    },
    outputs: { score: 'score', map: 'map' },
    threshold: 0.5,
  };
}

/** Serialized ONNX bytes of a tiny model. */
export function tinyOnnx(options: TinyModelOptions): Uint8Array {
  const channels = options.channels ?? 1;
  const inputName = options.inputName ?? 'image';
  const withMap = options.map ?? true;
  const { width, height } = options;
  const g = new GraphBuilder('tiny');
  const image = g.input(inputName, [1, channels, height, width]);
  const mean = g.op(
    'ReduceMean',
    [image],
    [intsAttr('axes', [1, 2, 3]), intAttr('keepdims', 0)],
    'mean',
  );
  if (withMap) g.op('ReduceMean', [image], [intsAttr('axes', [1]), intAttr('keepdims', 1)], 'map');
  const slowMean = options.slow === undefined ? mean : slowChain(g, mean, options.slow);
  const score = options.score ?? 'mean';
  if (score === 'mean') g.op('Identity', [slowMean], [], 'score');
  if (score === 'log-mean') g.op('Log', [mean], [], 'score');
  if (score === 'all-values') g.op('Identity', [image], [], 'score');
  if (options.extraOp !== undefined) g.op(options.extraOp, [mean], [], 'extra');
  g.output('score', score === 'all-values' ? [1, channels, height, width] : [1]);
  if (withMap) g.output('map', [1, 1, height, width]);
  const contract =
    options.contract === undefined ? tinyContract(width, height, channels) : options.contract;
  if (contract !== null) return encodeModel(g.build(), contract);
  return withoutContract(encodeModel(g.build(), tinyContract(width, height, channels)));
}

/**
 * Appends `steps` NxN MatMuls seeded by `mean` whose result is multiplied by zero and added
 * to it: the same value, slower to compute. Returns the name of that value.
 */
function slowChain(
  g: GraphBuilder,
  mean: string,
  slow: NonNullable<TinyModelOptions['slow']>,
): string {
  const { size, steps } = slow;
  const scale = g.weight('slow_scale', [], Float32Array.of(1 / size));
  const zero = g.weight('slow_zero', [], Float32Array.of(0));
  let shape: string;
  if (slow.when === 'bright') {
    // n = 1 + bright * (size - 1): the matrices are size x size on bright inputs, 1x1 otherwise.
    const half = g.weight('slow_half', [], Float32Array.of(0.5));
    const grow = g.int64s('slow_grow', [1], [size - 1]);
    const one = g.int64s('slow_one', [1], [1]);
    const bright = g.op('Greater', [mean, half], [], 'slow_bright');
    const brightI = g.op(
      'Cast',
      [bright],
      [intAttr('to', onnx.TensorProto.DataType.INT64)],
      'slow_bright_i',
    );
    const extra = g.op('Mul', [brightI, grow], [], 'slow_extra');
    const n = g.op('Add', [extra, one], [], 'slow_n');
    shape = g.op('Concat', [n, n], [intAttr('axis', 0)], 'slow_dyn_shape');
  } else shape = g.int64s('slow_shape', [2], [size, size]);
  g.op('Expand', [mean, shape], [], 'slow_0');
  for (let i = 0; i < steps; i++) {
    g.op('MatMul', [`slow_${i}`, 'slow_0'], [], `slow_mm_${i}`);
    g.op('Mul', [`slow_mm_${i}`, scale], [], `slow_${i + 1}`);
  }
  const slowMean = g.op(
    'ReduceMean',
    [`slow_${steps}`],
    [intsAttr('axes', [0, 1]), intAttr('keepdims', 0)],
    'slow_mean',
  );
  const nothing = g.op('Mul', [slowMean, zero], [], 'slow_nothing');
  return g.op('Add', [mean, nothing], [], 'mean_slow');
}

/** The model with no Linesight contract in its metadata. */
function withoutContract(bytes: Uint8Array): Uint8Array {
  const model = onnx.ModelProto.decode(bytes);
  model.metadataProps = model.metadataProps.filter((p) => p.key !== CONTRACT_METADATA_KEY);
  return onnx.ModelProto.encode(model).finish();
}
