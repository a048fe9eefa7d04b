// A mean-intensity ONNX model and grey images, so the inference tests need no trained artifact.
import onnxProto from 'onnx-proto';
import sharp from 'sharp';
import { CONTRACT_METADATA_KEY, type ModelContract } from '@linesight/vision';
import { greyInputSpec } from '@linesight/protocol';
import onnx = onnxProto.onnx;

/** A 1-channel model whose score is the mean intensity (0..1) of its input. */
export function meanScoreOnnx(options: {
  side: number;
  threshold: number;
  /** Extra work per run: a chain of `steps` NxN MatMuls that does not change the score. */
  slow?: { size: number; steps: number };
}): Uint8Array {
  const { side } = options;
  const contract: ModelContract = {
    schema: 'linesight.model/v1',
    kind: 'test-mean',
    inputSpec: greyInputSpec(side),
    outputs: { score: 'score' },
    threshold: options.threshold,
  };
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
  const float = (name: string, dims: number[], values: number[]): onnx.ITensorProto => ({
    name,
    dataType: onnx.TensorProto.DataType.FLOAT,
    dims,
    floatData: values,
  });
  const nodes: onnx.INodeProto[] = [
    {
      opType: 'ReduceMean',
      input: ['image'],
      output: ['mean'],
      attribute: [ints('axes', [1, 2, 3]), int('keepdims', 0)],
    },
  ];
  const initializer: onnx.ITensorProto[] = [];
  let scoreFrom = 'mean';
  if (options.slow !== undefined) {
    const { size, steps } = options.slow;
    initializer.push(
      {
        name: 'slow_shape',
        dataType: onnx.TensorProto.DataType.INT64,
        dims: [2],
        int64Data: [size, size],
      },
      float('slow_scale', [], [1 / size]),
      float('slow_zero', [], [0]),
    );
    nodes.push({ opType: 'Expand', input: ['mean', 'slow_shape'], output: ['slow_0'] });
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
    scoreFrom = 'mean_slow';
  }
  nodes.push({ opType: 'Identity', input: [scoreFrom], output: ['score'] });
  const valueInfo = (name: string, dims: number[]): onnx.IValueInfoProto => ({
    name,
    type: {
      tensorType: {
        elemType: onnx.TensorProto.DataType.FLOAT,
        shape: { dim: dims.map((d) => ({ dimValue: d })) },
      },
    },
  });
  return onnx.ModelProto.encode({
    irVersion: 7,
    opsetImport: [{ domain: '', version: 13 }],
    producerName: 'linesight-test',
    graph: {
      name: 'mean',
      node: nodes,
      initializer,
      input: [valueInfo('image', [1, 1, side, side])],
      output: [valueInfo('score', [1])],
    },
    metadataProps: [{ key: CONTRACT_METADATA_KEY, value: JSON.stringify(contract) }],
  }).finish();
}

/** A uniform grey image of one level, encoded as JPEG or PNG. */
export async function greyImage(level: number, format: 'jpeg' | 'png', side = 64): Promise<Buffer> {
  const image = sharp({
    create: {
      width: side,
      height: side,
      channels: 3,
      background: { r: level, g: level, b: level },
    },
  });
  return format === 'jpeg' ? image.jpeg({ quality: 95 }).toBuffer() : image.png().toBuffer();
}
