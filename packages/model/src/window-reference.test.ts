import { describe, expect, it } from 'vitest';
import { WINDOW_BOUNDS, greyInputSpec, scoreBounds } from '@linesight/protocol';
import { rawToTensor } from '@linesight/vision';
import { windowReference } from './window-reference.ts';

describe('windowReference', () => {
  it('bins image statistics and scores over the device bounds and counts the defect rate', () => {
    const spec = greyInputSpec(32);
    const tensors = [40, 120, 200].map((level) =>
      rawToTensor(new Uint8Array(32 * 32).fill(level), spec),
    );
    const ref = windowReference({
      tensors,
      inputSpec: spec,
      threshold: 0.5,
      goodScores: [0.1, 0.2, 0.3],
      validationScores: [0.1, 0.2, 0.3, 0.7],
    });
    expect(ref.frames).toBe(3);
    expect(ref.brightness?.le).toEqual(WINDOW_BOUNDS.brightness);
    expect(ref.brightness?.counts.reduce((a, b) => a + b, 0)).toBe(3);
    expect(ref.score?.le).toEqual(scoreBounds(0.5));
    expect(ref.scoreFrames).toBe(3);
    expect(ref.defectRate).toBe(0.25);
    expect(ref.defectRateFrames).toBe(4);
    expect(ref.meanImage?.[0]).toBeCloseTo(120, 1);
    // Flat images have no edges.
    expect(ref.sharpness?.counts[0]).toBe(3);
  });
});
