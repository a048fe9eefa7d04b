import type { InputSpec } from './schemas.ts';

/**
 * The input spec of a grey model: one channel, NCHW, `fill` resize to
 * width x height, pixels scaled to [0, 1] and not standardized further.
 */
export function greyInputSpec(width: number, height = width): InputSpec {
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
  };
}
