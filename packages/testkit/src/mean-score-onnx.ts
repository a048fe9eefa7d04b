// A mean-intensity ONNX model and grey images, so the inference tests need no trained artifact.
import sharp from 'sharp';
import { greyInputSpec } from '@linesight/protocol';
import { tinyOnnx } from './tiny-onnx.ts';

/** A 1-channel model whose score is the mean intensity (0..1) of its input; no map. */
export function meanScoreOnnx(options: {
  side: number;
  threshold: number;
  /** Extra work per run: a chain of `steps` NxN MatMuls that does not change the score. */
  slow?: { size: number; steps: number };
}): Uint8Array {
  const { side } = options;
  return tinyOnnx({
    width: side,
    height: side,
    map: false,
    contract: {
      schema: 'linesight.model/v1',
      kind: 'test-mean',
      inputSpec: greyInputSpec(side),
      outputs: { score: 'score' },
      threshold: options.threshold,
    },
    ...(options.slow === undefined ? {} : { slow: options.slow }),
  });
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
