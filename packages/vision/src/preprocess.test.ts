import { describe, expect, it } from 'vitest';
import { testInputSpec } from '@linesight/testkit/manifests';
import sharp from 'sharp';
import { isLinesightError, type InputSpec } from '@linesight/protocol';
import { decodeImagePixels, preprocessImage, rawToTensor } from './preprocess.ts';

function spec(overrides: Partial<InputSpec>): InputSpec {
  return testInputSpec({ width: 4, height: 3, ...overrides });
}

async function png(
  pixels: number[],
  width: number,
  height: number,
  channels: 1 | 3 | 4,
): Promise<Buffer> {
  return sharp(Buffer.from(pixels), { raw: { width, height, channels } }).png().toBuffer();
}

function expected(pixel: number, s: InputSpec, c: number): number {
  return Math.fround((pixel * s.scale - (s.mean[c] as number)) / (s.std[c] as number));
}

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (err) {
    return err;
  }
  throw new Error('expected a rejection');
}

describe('preprocessImage', () => {
  it('normalizes a greyscale image exactly', async () => {
    const pixels = [0, 17, 34, 51, 68, 85, 102, 119, 136, 200, 254, 255];
    const s = spec({});
    const out = await preprocessImage(await png(pixels, 4, 3, 1), s);
    expect(out).toBeInstanceOf(Float32Array);
    expect(out).toHaveLength(12);
    expect([...out]).toEqual(pixels.map((p) => expected(p, s, 0)));
  });

  it('lays out three channels as NCHW with per-channel mean and std', async () => {
    const rgb = [10, 20, 30, 40, 50, 60, 70, 80, 90, 250, 5, 128];
    const s = spec({
      width: 2,
      height: 2,
      channels: 3,
      mean: [0.485, 0.456, 0.406],
      std: [0.229, 0.224, 0.225],
    });
    const out = await preprocessImage(await png(rgb, 2, 2, 3), s);
    expect(out).toHaveLength(12);
    for (let c = 0; c < 3; c++) {
      for (let i = 0; i < 4; i++)
        expect(out[c * 4 + i]).toBe(expected(rgb[i * 3 + c] as number, s, c));
    }
  });

  it('drops alpha and spreads grey over three channels', async () => {
    const rgba = [255, 0, 0, 0, 0, 255, 0, 128, 0, 0, 255, 255, 9, 9, 9, 9];
    const s = spec({ width: 2, height: 2, channels: 3, mean: [0, 0, 0], std: [1, 1, 1], scale: 1 });
    const out = await preprocessImage(await png(rgba, 2, 2, 4), s);
    expect([...out]).toEqual([255, 0, 0, 9, 0, 255, 0, 9, 0, 0, 255, 9]);
    const grey = await preprocessImage(await png([7, 8, 9, 10], 2, 2, 1), s);
    expect([...grey]).toEqual([7, 8, 9, 10, 7, 8, 9, 10, 7, 8, 9, 10]);
  });

  it('converts colour to greyscale for one channel', async () => {
    const s = spec({ width: 2, height: 1, mean: [0], std: [1], scale: 1 });
    const out = await preprocessImage(await png([255, 255, 255, 0, 0, 0], 2, 1, 3), s);
    expect([...out]).toEqual([255, 0]);
  });

  it('resizes with fill, contain and cover', async () => {
    const raw = { mean: [0], std: [1], scale: 1 };
    // 8x4 white: fill stretches to 4x4, all white.
    const white = await png(new Array<number>(32).fill(255), 8, 4, 1);
    const filled = await preprocessImage(
      white,
      spec({ width: 4, height: 4, resize: 'fill', ...raw }),
    );
    expect([...filled]).toEqual(new Array<number>(16).fill(255));
    // contain keeps the 2:1 aspect: rows 0 and 3 are black padding, rows 1-2 white.
    const contained = await preprocessImage(
      white,
      spec({ width: 4, height: 4, resize: 'contain', ...raw }),
    );
    expect([...contained]).toEqual([
      ...new Array<number>(4).fill(0),
      ...new Array<number>(8).fill(255),
      ...new Array<number>(4).fill(0),
    ]);
    // cover crops the centre of a 12x4 image: black | white | black -> all white.
    const bands = Array.from({ length: 48 }, (_, i) => (i % 12 >= 4 && i % 12 < 8 ? 255 : 0));
    const covered = await preprocessImage(
      await png(bands, 12, 4, 1),
      spec({ width: 4, height: 4, resize: 'cover', ...raw }),
    );
    expect([...covered]).toEqual(new Array<number>(16).fill(255));
  });

  it('resizes with fill, contain and cover under a named kernel too', async () => {
    const raw = { mean: [0], std: [1], scale: 1, resizeKernel: 'nearest' as const };
    const white = await png(new Array<number>(32).fill(255), 8, 4, 1);
    const filled = await preprocessImage(
      white,
      spec({ width: 4, height: 4, resize: 'fill', ...raw }),
    );
    expect([...filled]).toEqual(new Array<number>(16).fill(255));
    // contain pads with black, not with the default background.
    const contained = await preprocessImage(
      white,
      spec({ width: 4, height: 4, resize: 'contain', ...raw }),
    );
    expect([...contained]).toEqual([
      ...new Array<number>(4).fill(0),
      ...new Array<number>(8).fill(255),
      ...new Array<number>(4).fill(0),
    ]);
    const colourContained = await preprocessImage(
      await png(new Array<number>(96).fill(255), 8, 4, 3),
      spec({
        width: 4,
        height: 4,
        channels: 3,
        resize: 'contain',
        ...raw,
        mean: [0, 0, 0],
        std: [1, 1, 1],
      }),
    );
    expect([...colourContained].slice(0, 4)).toEqual([0, 0, 0, 0]);
    expect([...colourContained].slice(4, 12)).toEqual(new Array<number>(8).fill(255));
    const bands = Array.from({ length: 48 }, (_, i) => (i % 12 >= 4 && i % 12 < 8 ? 255 : 0));
    const covered = await preprocessImage(
      await png(bands, 12, 4, 1),
      spec({ width: 4, height: 4, resize: 'cover', ...raw }),
    );
    expect([...covered]).toEqual(new Array<number>(16).fill(255));
  });

  it('downscales larger images to the spec size', async () => {
    const big = await sharp({
      create: { width: 640, height: 480, channels: 3, background: { r: 10, g: 200, b: 30 } },
    })
      .jpeg()
      .toBuffer();
    const s = spec({ width: 64, height: 32, channels: 3, mean: [0, 0, 0], std: [1, 1, 1] });
    const out = await preprocessImage(big, s);
    expect(out).toHaveLength(3 * 64 * 32);
    expect(out.every(Number.isFinite)).toBe(true);
  });

  it('rejects corrupt, truncated, empty and non-image bytes with ERR_IMAGE_DECODE', async () => {
    const jpeg = await sharp(
      Buffer.from(Array.from({ length: 48 * 48 * 3 }, (_, i) => (i * 37) % 256)),
      {
        raw: { width: 48, height: 48, channels: 3 },
      },
    )
      .jpeg()
      .toBuffer();
    const pngBytes = await png(
      Array.from({ length: 64 * 64 }, (_, i) => (i * 13) % 256),
      64,
      64,
      1,
    );
    const inputs = [
      jpeg.subarray(0, Math.floor(jpeg.length * 0.6)),
      pngBytes.subarray(0, Math.floor(pngBytes.length * 0.5)),
      Buffer.alloc(0),
      Buffer.from('definitely not an image'),
      Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 7919) % 256)),
    ];
    for (const input of inputs) {
      const err = await rejection(preprocessImage(input, spec({})));
      expect(isLinesightError(err, 'ERR_IMAGE_DECODE')).toBe(true);
      expect((err as Error).cause).toBeDefined();
    }
  });
});

describe('rawToTensor', () => {
  it('refuses a spec without a mean and a positive std for every channel', () => {
    const bad: [string, Partial<InputSpec>][] = [
      ['std 0', { std: [0] }],
      ['negative std', { std: [-0.5] }],
      ['NaN std', { std: [Number.NaN] }],
      ['no mean', { mean: [] }],
      ['no std', { std: [] }],
      ['RGB with two means', { channels: 3, mean: [0, 0], std: [1, 1, 1] }],
      ['RGB with two stds', { channels: 3, mean: [0, 0, 0], std: [1, 1] }],
      ['RGB with std 0 last', { channels: 3, mean: [0, 0, 0], std: [1, 1, 0] }],
    ];
    for (const [what, overrides] of bad) {
      const s = spec(overrides);
      const pixels = new Uint8Array(s.width * s.height * s.channels).fill(9);
      expect(() => rawToTensor(pixels, s), what).toThrow(
        expect.objectContaining({ code: 'ERR_MODEL_CONTRACT' }),
      );
    }
    // A tiny positive std is a valid spec.
    expect(
      rawToTensor(Uint8Array.of(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12), spec({ std: [1e-9] })),
    ).toHaveLength(12);
  });

  it('normalizes every pixel of a grey image with the whole 0-255 range', () => {
    const s = spec({ width: 16, height: 16, mean: [0.25], std: [0.5] });
    const pixels = Uint8Array.from({ length: 256 }, (_, i) => 255 - i);
    const out = rawToTensor(pixels, s);
    for (let i = 0; i < 256; i++) expect(out[i], String(i)).toBe(expected(255 - i, s, 0));
  });

  it('matches the decoder path and checks its input size', async () => {
    const s = spec({
      width: 2,
      height: 2,
      channels: 3,
      mean: [0.1, 0.2, 0.3],
      std: [0.5, 0.6, 0.7],
    });
    const image = await png([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12], 2, 2, 3);
    expect(rawToTensor(await decodeImagePixels(image, s), s)).toEqual(
      await preprocessImage(image, s),
    );
    expect(() => rawToTensor(new Uint8Array(11), s)).toThrow(
      expect.objectContaining({ code: 'ERR_IMAGE_DECODE' }),
    );
  });
});
