// Tiny hand-built ONNX models, so tests need no trained artifact.
import onnxProto from 'onnx-proto';
import { CONTRACT_METADATA_KEY, type ModelContract } from '@linesight/vision';
import onnx = onnxProto.onnx;

/** Options for a tiny model: score = mean (or log of the mean) of the input, map = channel mean. */
export interface TinyModelOptions {
  width: number;
  height: number;
  channels?: 1 | 3;
  inputName?: string;
  score?: 'mean' | 'log-mean' | 'all-values';
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
  const contract =
    options.contract === undefined
      ? tinyContract(options.width, options.height, channels)
      : options.contract;
  const ints = (name: string, values: number[]): onnx.IAttributeProto => ({
    name,
    type: onnx.AttributeProto.AttributeType.INTS,
    ints: values,
  });
  const int = (name: string, value: number): onnx.IAttributeProto => ({
    name,
    type: onnx.AttributeProto.AttributeType.INT,
    i: value,
  });
  const nodes: onnx.INodeProto[] = [
    {
      opType: 'ReduceMean',
      input: [inputName],
      output: ['mean'],
      attribute: [ints('axes', [1, 2, 3]), int('keepdims', 0)],
    },
    {
      opType: 'ReduceMean',
      input: [inputName],
      output: ['map'],
      attribute: [ints('axes', [1]), int('keepdims', 1)],
    },
  ];
  const initializer: onnx.ITensorProto[] = [];
  let meanName = 'mean';
  if (options.slow !== undefined) {
    const { size, steps } = options.slow;
    initializer.push(
      {
        name: 'slow_shape',
        dataType: onnx.TensorProto.DataType.INT64,
        dims: [2],
        int64Data: [size, size],
      },
      {
        name: 'slow_scale',
        dataType: onnx.TensorProto.DataType.FLOAT,
        dims: [],
        floatData: [1 / size],
      },
      { name: 'slow_zero', dataType: onnx.TensorProto.DataType.FLOAT, dims: [], floatData: [0] },
    );
    if (options.slow.when === 'bright') {
      initializer.push(
        {
          name: 'slow_half',
          dataType: onnx.TensorProto.DataType.FLOAT,
          dims: [],
          floatData: [0.5],
        },
        {
          name: 'slow_grow',
          dataType: onnx.TensorProto.DataType.INT64,
          dims: [1],
          int64Data: [size - 1],
        },
        { name: 'slow_one', dataType: onnx.TensorProto.DataType.INT64, dims: [1], int64Data: [1] },
      );
      nodes.push(
        { opType: 'Greater', input: ['mean', 'slow_half'], output: ['slow_bright'] },
        {
          opType: 'Cast',
          input: ['slow_bright'],
          output: ['slow_bright_i'],
          attribute: [int('to', onnx.TensorProto.DataType.INT64)],
        },
        { opType: 'Mul', input: ['slow_bright_i', 'slow_grow'], output: ['slow_extra'] },
        { opType: 'Add', input: ['slow_extra', 'slow_one'], output: ['slow_n'] },
        {
          opType: 'Concat',
          input: ['slow_n', 'slow_n'],
          output: ['slow_dyn_shape'],
          attribute: [int('axis', 0)],
        },
        { opType: 'Expand', input: ['mean', 'slow_dyn_shape'], output: ['slow_0'] },
      );
    } else nodes.push({ opType: 'Expand', input: ['mean', 'slow_shape'], output: ['slow_0'] });
    for (let i = 0; i < steps; i++) {
      nodes.push({ opType: 'MatMul', input: [`slow_${i}`, 'slow_0'], output: [`slow_mm_${i}`] });
      nodes.push({
        opType: 'Mul',
        input: [`slow_mm_${i}`, 'slow_scale'],
        output: [`slow_${i + 1}`],
      });
    }
    nodes.push(
      {
        opType: 'ReduceMean',
        input: [`slow_${steps}`],
        output: ['slow_mean'],
        attribute: [ints('axes', [0, 1]), int('keepdims', 0)],
      },
      { opType: 'Mul', input: ['slow_mean', 'slow_zero'], output: ['slow_nothing'] },
      { opType: 'Add', input: ['mean', 'slow_nothing'], output: ['mean_slow'] },
    );
    meanName = 'mean_slow';
  }
  const score = options.score ?? 'mean';
  if (score === 'mean') nodes.push({ opType: 'Identity', input: [meanName], output: ['score'] });
  if (score === 'log-mean') nodes.push({ opType: 'Log', input: ['mean'], output: ['score'] });
  if (score === 'all-values')
    nodes.push({ opType: 'Identity', input: [inputName], output: ['score'] });
  if (options.extraOp !== undefined)
    nodes.push({ opType: options.extraOp, input: ['mean'], output: ['extra'] });
  const valueInfo = (name: string, dims: number[]): onnx.IValueInfoProto => ({
    name,
    type: {
      tensorType: {
        elemType: onnx.TensorProto.DataType.FLOAT,
        shape: { dim: dims.map((d) => ({ dimValue: d })) },
      },
    },
  });
  const model: onnx.IModelProto = {
    irVersion: 7,
    opsetImport: [{ domain: '', version: 13 }],
    producerName: 'linesight-test',
    graph: {
      name: 'tiny',
      node: nodes,
      initializer,
      input: [valueInfo(inputName, [1, channels, options.height, options.width])],
      output: [
        valueInfo(
          'score',
          score === 'all-values' ? [1, channels, options.height, options.width] : [1],
        ),
        valueInfo('map', [1, 1, options.height, options.width]),
      ],
    },
    metadataProps:
      contract === null ? [] : [{ key: CONTRACT_METADATA_KEY, value: JSON.stringify(contract) }],
  };
  return onnx.ModelProto.encode(model).finish();
}
