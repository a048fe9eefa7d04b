import type { InputSpec } from './schemas.ts';

/** A resize kernel an input spec may name (sharp's kernels). */
export type ResizeKernel = NonNullable<InputSpec['resizeKernel']>;

/**
 * The input spec of a grey model: one channel, NCHW, `fill` resize to
 * width x height, pixels scaled to [0, 1] and not standardized further.
 * With `resizeKernel`, the frame is resized with that kernel (and converted
 * to grey after the resize); without it, the spec is the one models were
 * trained with before the field existed.
 */
export function greyInputSpec(
  width: number,
  height = width,
  options: { resizeKernel?: ResizeKernel } = {},
): InputSpec {
  return {
    inputName: 'image',
    width,
    height,
    channels: 1,
    layout: 'NCHW',
    resize: 'fill',
    scale: 1 / 255,
    mean: [0],
    std: [1],
    ...(options.resizeKernel !== undefined ? { resizeKernel: options.resizeKernel } : {}),
  };
}
