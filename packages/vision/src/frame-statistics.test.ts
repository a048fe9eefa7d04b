import { describe, expect, it } from 'vitest';
import { testInputSpec } from '@linesight/testkit/manifests';
import { MEAN_IMAGE_SIDE, type InputSpec } from '@linesight/protocol';
import { frameImageStats, type FrameImageStats } from './frame-statistics.ts';
import { rawToTensor } from './preprocess.ts';

function spec(overrides: Partial<InputSpec>): InputSpec {
  return testInputSpec({ width: 12, height: 10, ...overrides });
}

/** Deterministic HWC pixels over the whole 0-255 range. */
function pixels(s: InputSpec, seed: number): Uint8Array {
  let state = seed;
  return Uint8Array.from({ length: s.width * s.height * s.channels }, () => {
    state = (state * 1103515245 + 12345) & 0x7fffffff;
    return state % 256;
  });
}

/**
 * The statistics as the doc comments define them, from the 8-bit pixels (not the
 * tensor): grey is the mean over channels, sampled every `stride` pixels inside a
 * one-pixel border.
 */
function reference(raw: Uint8Array, s: InputSpec, stride: number): FrameImageStats {
  const { width, height, channels } = s;
  const grey = (x: number, y: number) => {
    let sum = 0;
    for (let c = 0; c < channels; c++) sum += raw[(y * width + x) * channels + c] as number;
    return sum / channels;
  };
  const side = MEAN_IMAGE_SIDE;
  const cells = Array.from({ length: side * side }, () => [] as number[]);
  const values: number[] = [];
  const laplacians: number[] = [];
  for (let y = 1; y < height - 1; y += stride) {
    for (let x = 1; x < width - 1; x += stride) {
      const g = grey(x, y);
      values.push(g);
      laplacians.push(
        Math.abs(4 * g - grey(x - 1, y) - grey(x + 1, y) - grey(x, y - 1) - grey(x, y + 1)),
      );
      const row = Math.min(side - 1, Math.floor((y * side) / height));
      const col = Math.min(side - 1, Math.floor((x * side) / width));
      cells[row * side + col]?.push(g);
    }
  }
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  const brightness = mean(values);
  return {
    brightness,
    contrast: Math.sqrt(mean(values.map((v) => (v - brightness) ** 2))),
    sharpness: mean(laplacians),
    clippedHigh: values.filter((v) => v >= 250).length / values.length,
    clippedLow: values.filter((v) => v <= 5).length / values.length,
    grid: Float32Array.from(cells, (cell) => (cell.length > 0 ? mean(cell) : brightness)),
  };
}

function expectClose(actual: FrameImageStats, expected: FrameImageStats, what: string): void {
  for (const key of ['brightness', 'contrast', 'sharpness', 'clippedHigh', 'clippedLow'] as const)
    expect(actual[key], `${what}: ${key}`).toBeCloseTo(expected[key], 3);
  expect(actual.grid).toHaveLength(MEAN_IMAGE_SIDE * MEAN_IMAGE_SIDE);
  for (let i = 0; i < expected.grid.length; i++)
    expect(actual.grid[i], `${what}: grid cell ${i}`).toBeCloseTo(expected.grid[i] as number, 3);
}

describe('frameImageStats', () => {
  it('undoes a grey spec normalization and samples every second pixel by default', () => {
    for (const s of [spec({}), spec({ width: 16, height: 16 }), spec({ width: 23, height: 9 })]) {
      const raw = pixels(s, s.width);
      const tensor = rawToTensor(raw, s);
      const what = `${s.width}x${s.height}`;
      expectClose(frameImageStats(tensor, s), reference(raw, s, 2), `${what} stride 2`);
      expectClose(frameImageStats(tensor, s, 1), reference(raw, s, 1), `${what} stride 1`);
      expectClose(frameImageStats(tensor, s, 3), reference(raw, s, 3), `${what} stride 3`);
    }
  });

  it('averages the channels of an RGB spec, each with its own mean and std', () => {
    const s = spec({
      width: 14,
      height: 11,
      channels: 3,
      mean: [0.485, 0.456, 0.406],
      std: [0.229, 0.224, 0.225],
    });
    const raw = pixels(s, 5);
    const tensor = rawToTensor(raw, s);
    expectClose(frameImageStats(tensor, s, 1), reference(raw, s, 1), 'stride 1');
    expectClose(frameImageStats(tensor, s), reference(raw, s, 2), 'stride 2');
  });

  it('counts a pixel at 250 as clipped high and at 5 as clipped low, not their neighbours', () => {
    // Scale 1, mean 0, std 1: the tensor holds the pixel values exactly.
    const s = spec({ width: 8, height: 3, scale: 1, mean: [0], std: [1] });
    // The middle row is sampled at x = 1..6 with stride 1.
    const row = [0, 4, 5, 6, 249, 250, 251, 0];
    const raw = Uint8Array.from([
      ...new Array<number>(8).fill(128),
      ...row,
      ...new Array<number>(8).fill(128),
    ]);
    const stats = frameImageStats(rawToTensor(raw, s), s, 1);
    expect(stats.clippedLow).toBe(2 / 6);
    expect(stats.clippedHigh).toBe(2 / 6);
    expect(stats.brightness).toBe((4 + 5 + 6 + 249 + 250 + 251) / 6);
  });

  it('gives the brightness to the grid cells no sample falls in', () => {
    // 16 wide, stride 2: samples at x = 1, 3, ..., 13 leave the last column of cells empty.
    const s = spec({ width: 16, height: 16, scale: 1, mean: [0], std: [1] });
    const raw = Uint8Array.from({ length: 256 }, (_, i) => (i % 16) * 10);
    const stats = frameImageStats(rawToTensor(raw, s), s);
    expect(stats.grid[7]).toBe(stats.brightness);
    expect(stats.grid[63]).toBe(stats.brightness);
    expect(stats.grid[0]).toBe(10);
    expect(stats.grid[6]).toBe(130);
  });

  it('gives zeros for an input too small to have an inside pixel', () => {
    const s = spec({ width: 2, height: 2 });
    const stats = frameImageStats(rawToTensor(Uint8Array.of(200, 200, 200, 200), s), s);
    expect(stats).toEqual({
      brightness: 0,
      contrast: 0,
      sharpness: 0,
      clippedHigh: 0,
      clippedLow: 0,
      grid: new Float32Array(MEAN_IMAGE_SIDE * MEAN_IMAGE_SIDE),
    });
    const one = spec({ width: 3, height: 3, scale: 1, mean: [0], std: [1] });
    const single = frameImageStats(
      rawToTensor(Uint8Array.of(0, 0, 0, 0, 90, 0, 0, 0, 0), one),
      one,
    );
    expect(single.brightness).toBe(90);
    expect(single.sharpness).toBe(360);
    expect(single.contrast).toBe(0);
  });
});
