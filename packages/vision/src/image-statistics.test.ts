import { describe, expect, it } from 'vitest';
import type { InputSpec } from '@linesight/protocol';
import { tensorStatistics } from './image-statistics.ts';
import { rawToTensor } from './preprocess.ts';

describe('tensorStatistics', () => {
  it('recovers mean intensity and contrast on the 0-255 scale from a normalized tensor', () => {
    const spec: InputSpec = {
      inputName: 'x',
      width: 2,
      height: 2,
      channels: 3,
      layout: 'NCHW',
      resize: 'fill',
      scale: 1 / 255,
      mean: [0.485, 0.456, 0.406],
      std: [0.229, 0.224, 0.225],
    };
    // Every pixel value is 100 or 200, half each: mean 150, standard deviation 50.
    const pixels = Uint8Array.from({ length: 12 }, (_, i) => (i % 2 === 0 ? 100 : 200));
    const stats = tensorStatistics(rawToTensor(pixels, spec), spec);
    expect(stats.meanIntensity).toBeCloseTo(150, 3);
    expect(stats.contrast).toBeCloseTo(50, 3);
  });
});
