import { describe, expect, it } from 'vitest';
import { greyInputSpec } from '@linesight/protocol';
import { frameImageStats, rawToTensor } from '@linesight/vision';
import { CameraHealthAccumulator } from './camera-health.ts';

const spec = greyInputSpec(64);

function frame(fill: (x: number, y: number) => number) {
  const pixels = new Uint8Array(64 * 64);
  for (let y = 0; y < 64; y++) for (let x = 0; x < 64; x++) pixels[y * 64 + x] = fill(x, y);
  return frameImageStats(rawToTensor(pixels, spec), spec);
}

describe('CameraHealthAccumulator', () => {
  it('counts frozen, dark and clipped frames and keeps the mean image', () => {
    const health = new CameraHealthAccumulator();
    const textured = (seed: number) => frame((x, y) => (x * 7 + y * 13 + seed * 31) % 200);
    health.add(textured(1));
    health.add(textured(2));
    health.add(textured(2)); // same image again: frozen
    health.add(frame(() => 0)); // dark and clipped low
    health.add(frame(() => 255)); // clipped high
    const w = health.close();
    expect(w).toMatchObject({ frames: 5, frozenFrames: 1, darkFrames: 1 });
    expect(w?.clippedLowShare).toBeGreaterThan(0.19);
    expect(w?.clippedHighShare).toBeCloseTo(0.2, 2);
    expect(w?.meanImage).toHaveLength(64);
  });

  it('tells a camera frozen across a window boundary and resets its counts', () => {
    const health = new CameraHealthAccumulator();
    const still = frame((x) => x * 3);
    health.add(still);
    expect(health.close()).toMatchObject({ frames: 1, frozenFrames: 0 });
    health.add(still);
    expect(health.close()).toMatchObject({ frames: 1, frozenFrames: 1 });
    expect(health.close()).toBeUndefined();
  });

  it('puts a dark band where it is in the mean image', () => {
    const health = new CameraHealthAccumulator();
    health.add(frame((x) => (x < 16 ? 0 : 200)));
    const image = health.close()?.meanImage ?? [];
    expect(image[0]).toBe(0);
    expect(image[7]).toBe(200);
  });
});
