import { describe, expect, it } from 'vitest';
import onnxProto from 'onnx-proto';
import { OnnxModel, readModelContract, type ModelContract } from '@linesight/vision';
import {
  GraphBuilder,
  ONNX_IR_VERSION,
  ONNX_OPSET,
  encodeModel,
  floatTensor,
  intAttr,
  intsAttr,
} from './onnx-graph.ts';
import onnx = onnxProto.onnx;

const contract: ModelContract = {
  schema: 'linesight.model/v1',
  kind: 'test',
  inputSpec: {
    inputName: 'x',
    width: 8,
    height: 8,
    channels: 1,
    layout: 'NCHW',
    resize: 'fill',
    scale: 1,
    mean: [0],
    std: [1],
  },
  outputs: { score: 'score', map: 'map' },
  threshold: 1,
};

function buildModel(): Uint8Array {
  const g = new GraphBuilder('test-graph');
  const x = g.input('x', [1, 1, 8, 8]);
  const weights = new Float32Array(9).fill(1 / 9);
  const smooth = g.op(
    'Conv',
    [x, g.weight('box', [1, 1, 3, 3], weights)],
    [intsAttr('kernel_shape', [3, 3]), intsAttr('pads', [1, 1, 1, 1])],
  );
  const map = g.op('Relu', [smooth], [], 'map');
  // Opset 13: ReduceSum takes axes as an input, ReduceMax as an attribute.
  const total = g.op(
    'ReduceSum',
    [map, g.int64s('axes', [3], [1, 2, 3])],
    [intAttr('keepdims', 0)],
  );
  const peak = g.op('ReduceMax', [map], [intsAttr('axes', [1, 2, 3]), intAttr('keepdims', 0)]);
  g.op('Add', [total, peak], [], 'score');
  g.output('score', [1]);
  g.output('map', [1, 1, 8, 8]);
  return encodeModel(g.build(), contract);
}

describe('onnx-graph', () => {
  it('encodes an IR 7 / opset 13 model with the contract, deterministically', () => {
    const bytes = buildModel();
    expect(Buffer.from(buildModel()).equals(Buffer.from(bytes))).toBe(true);
    const model = onnx.ModelProto.decode(bytes);
    expect(Number(model.irVersion)).toBe(ONNX_IR_VERSION);
    expect(model.opsetImport.map((o) => [o.domain, Number(o.version)])).toEqual([['', ONNX_OPSET]]);
    expect(model.producerName).toBe('linesight');
    expect(readModelContract(bytes)).toEqual(contract);
    expect(model.graph?.node?.map((n) => n.opType)).toEqual([
      'Conv',
      'Relu',
      'ReduceSum',
      'ReduceMax',
      'Add',
    ]);
  });

  it('stores float32 weights little-endian in raw_data', () => {
    const tensor = floatTensor('w', [2], Float32Array.from([1, -2.5]));
    expect([...(tensor.rawData ?? [])]).toEqual([0, 0, 0x80, 0x3f, 0, 0, 0x20, 0xc0]);
    expect(() => floatTensor('w', [3], new Float32Array(2))).toThrow(RangeError);
  });

  it('builds graphs ONNX Runtime runs', async () => {
    const model = await OnnxModel.load(buildModel());
    try {
      const out = await model.run(new Float32Array(64).fill(9));
      // Interior cells average nine 9s; edge cells see zero padding.
      expect(out.map?.data[9]).toBeCloseTo(9, 5);
      expect(out.map?.data[0]).toBeCloseTo(4, 5);
      const sum = [...(out.map?.data ?? [])].reduce((a, b) => a + b, 0);
      expect(out.score).toBeCloseTo(sum + 9, 3);
    } finally {
      await model.close();
    }
  });

  it('refuses duplicate names and outputs nothing produces', () => {
    const g = new GraphBuilder('g');
    g.input('x', [1]);
    expect(() => g.op('Relu', ['x'], [], 'x')).toThrow(RangeError);
    expect(() => g.output('nope', [1])).toThrow(RangeError);
  });
});
