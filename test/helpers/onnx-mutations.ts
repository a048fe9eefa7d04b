// Bad models made from good ones, for resilience tests. Graph mutations edit
// the ONNX graph with onnx-proto and leave the metadata (the Linesight
// contract) as it was, so the file still claims to be the model it was;
// contract mutations change only the contract.
import onnxProto from 'onnx-proto';
import { floatTensor, int64Tensor, intAttr, intsAttr } from '@linesight/model';
import { readModelContract, withModelContract } from '@linesight/vision';
import onnx = onnxProto.onnx;

const INT64 = onnx.TensorProto.DataType.INT64;

function decode(bytes: Uint8Array): onnx.ModelProto {
  return onnx.ModelProto.decode(bytes);
}

function encode(model: onnx.IModelProto): Uint8Array {
  return onnx.ModelProto.encode(model).finish();
}

function graphOf(model: onnx.ModelProto): onnx.IGraphProto {
  if (!model.graph) throw new Error('ONNX model has no graph');
  return model.graph;
}

/** Renames the output of the node producing `name` to `renamed`, so a new node can produce `name`. */
function detachOutput(graph: onnx.IGraphProto, name: string, renamed: string): void {
  const producer = (graph.node ?? []).find((n) => (n.output ?? []).includes(name));
  if (producer === undefined) throw new Error(`no node produces "${name}"`);
  producer.output = (producer.output ?? []).map((o) => (o === name ? renamed : o));
}

const scalar = (name: string, value: number): onnx.ITensorProto =>
  floatTensor(name, [], Float32Array.of(value));

const int64s = (name: string, values: number[]): onnx.ITensorProto =>
  int64Tensor(name, [values.length], values);

/** The model with its score multiplied by NaN: every output score, golden or real, is NaN. */
export function withNanScore(bytes: Uint8Array): Uint8Array {
  const model = decode(bytes);
  const graph = graphOf(model);
  const score = readModelContract(bytes).outputs.score;
  detachOutput(graph, score, `${score}_before_nan`);
  graph.initializer = [...(graph.initializer ?? []), scalar('mutation_nan', Number.NaN)];
  graph.node = [
    ...(graph.node ?? []),
    { opType: 'Mul', input: [`${score}_before_nan`, 'mutation_nan'], output: [score] },
  ];
  return encode(model);
}

/**
 * The same graph with a contract that promises another input size: the
 * graph's declared input shape no longer matches the contract (and the
 * manifest made from it). Editing the contract rather than the graph keeps
 * ONNX Runtime's own shape inference from failing first, whatever the model's
 * architecture.
 */
export function withContractInputSize(
  bytes: Uint8Array,
  size: { width: number; height: number },
): Uint8Array {
  const contract = readModelContract(bytes);
  return withModelContract(bytes, {
    ...contract,
    inputSpec: { ...contract.inputSpec, ...size },
  });
}

/** The model plus a node of an operator no runtime knows, so it cannot be loaded. */
export function withUnknownOp(bytes: Uint8Array, opType = 'LinesightNoSuchOp'): Uint8Array {
  const model = decode(bytes);
  const graph = graphOf(model);
  const score = readModelContract(bytes).outputs.score;
  detachOutput(graph, score, `${score}_before_unknown`);
  graph.node = [
    ...(graph.node ?? []),
    { opType, input: [`${score}_before_unknown`], output: [score] },
  ];
  return encode(model);
}

/**
 * The model plus a side chain of `steps` NxN MatMuls whose result is
 * multiplied by zero and added to the score, so scores are unchanged but runs
 * are slow. With `when: 'real-frames'` (the default) the chain is free on the
 * standard golden inputs (constant, or spanning exactly [-1, 1]) and costly on
 * any other input, i.e. on every real camera frame: the model passes
 * registration and the device's golden check, then is slow on the line. With
 * `when: 'always'` every run is slow.
 */
export function withSlowSideChain(
  bytes: Uint8Array,
  options: { size: number; steps: number; when?: 'real-frames' | 'always' },
): Uint8Array {
  const { size, steps } = options;
  const always = options.when === 'always';
  const model = decode(bytes);
  const graph = graphOf(model);
  const contract = readModelContract(bytes);
  const image = contract.inputSpec.inputName;
  const score = contract.outputs.score;
  detachOutput(graph, score, `${score}_fast`);
  const reduce = (opType: string, input: string, output: string): onnx.INodeProto => ({
    opType,
    input: [input],
    output: [output],
    attribute: [intAttr('keepdims', 0)],
  });
  graph.initializer = [
    ...(graph.initializer ?? []),
    scalar('slow_zero', 0),
    scalar('slow_one', 1),
    scalar('slow_scale', 1 / size),
    ...(always
      ? [int64s('slow_square', [size, size])]
      : [
          int64Tensor('slow_grow', [], [size - 1]),
          int64Tensor('slow_base', [], [1]),
          int64s('slow_rank2', [2]),
          scalar('slow_two', 2),
          scalar('slow_margin', 0.01),
        ]),
  ];
  const gate: onnx.INodeProto[] = [
    reduce('ReduceMin', image, 'slow_min'),
    reduce('ReduceMax', image, 'slow_max'),
    // Golden inputs are constant (range 0) or span exactly [-1, 1] (range 2); camera frames are neither.
    { opType: 'Sub', input: ['slow_max', 'slow_min'], output: ['slow_range'] },
    { opType: 'Greater', input: ['slow_range', 'slow_zero'], output: ['slow_varies'] },
    { opType: 'Sub', input: ['slow_range', 'slow_two'], output: ['slow_off_two'] },
    { opType: 'Abs', input: ['slow_off_two'], output: ['slow_off_two_abs'] },
    { opType: 'Greater', input: ['slow_off_two_abs', 'slow_margin'], output: ['slow_not_golden'] },
    { opType: 'And', input: ['slow_varies', 'slow_not_golden'], output: ['slow_real'] },
    {
      opType: 'Cast',
      input: ['slow_real'],
      output: ['slow_real_i'],
      attribute: [intAttr('to', INT64)],
    },
    // n = 1 + real * (size - 1): the matrices are 1x1 on golden inputs, size x size on frames.
    { opType: 'Mul', input: ['slow_real_i', 'slow_grow'], output: ['slow_extra'] },
    { opType: 'Add', input: ['slow_extra', 'slow_base'], output: ['slow_n'] },
    { opType: 'Expand', input: ['slow_n', 'slow_rank2'], output: ['slow_shape'] },
  ];
  const nodes: onnx.INodeProto[] = [
    ...(always ? [] : gate),
    {
      opType: 'Expand',
      input: ['slow_one', always ? 'slow_square' : 'slow_shape'],
      output: ['slow_0'],
    },
  ];
  for (let i = 0; i < steps; i++) {
    nodes.push(
      { opType: 'MatMul', input: [`slow_${i}`, 'slow_0'], output: [`slow_mm_${i}`] },
      { opType: 'Mul', input: [`slow_mm_${i}`, 'slow_scale'], output: [`slow_${i + 1}`] },
    );
  }
  nodes.push(
    {
      opType: 'ReduceMean',
      input: [`slow_${steps}`],
      output: ['slow_mean'],
      attribute: [intsAttr('axes', [0, 1]), intAttr('keepdims', 0)],
    },
    { opType: 'Mul', input: ['slow_mean', 'slow_zero'], output: ['slow_nothing'] },
    { opType: 'Add', input: [`${score}_fast`, 'slow_nothing'], output: [score] },
  );
  graph.node = [...(graph.node ?? []), ...nodes];
  return encode(model);
}

/** The same model with `padBytes` of padding in its contract's `training` field (a bigger artifact). */
export function withPadding(bytes: Uint8Array, padBytes: number, note = 'padding'): Uint8Array {
  const contract = readModelContract(bytes);
  return withModelContract(bytes, {
    ...contract,
    training: { ...(contract.training ?? {}), note, padding: 'x'.repeat(padBytes) },
  });
}
