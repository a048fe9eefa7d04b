import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import sharp from 'sharp';
import type { InputSpec } from '@linesight/protocol';
import { decodeImagePixels, jpegComponents } from './preprocess.ts';

/** The decoder as it was before input specs could name a kernel: old specs must get these bytes. */
async function previousDecode(image: Uint8Array, spec: InputSpec): Promise<Buffer> {
  let pipeline = sharp(image, { failOn: 'error', sequentialRead: true })
    .autoOrient()
    .resize(spec.width, spec.height, {
      fit: spec.resize,
      background: { r: 0, g: 0, b: 0, alpha: 1 },
    });
  pipeline = spec.channels === 1 ? pipeline.greyscale() : pipeline.toColourspace('srgb');
  return pipeline.removeAlpha().raw({ depth: 'uchar' }).toBuffer();
}

function spec(overrides: Partial<InputSpec> = {}): InputSpec {
  return {
    inputName: 'image',
    width: 64,
    height: 48,
    channels: 1,
    layout: 'NCHW',
    resize: 'fill',
    scale: 1 / 255,
    mean: [0],
    std: [1],
    ...overrides,
  };
}

/** Deterministic texture with structure at several scales, so resize kernels differ. */
function texture(width: number, height: number, channels: number, seed: number): Buffer {
  const out = Buffer.alloc(width * height * channels);
  let s = seed;
  for (let y = 0; y < height; y++)
    for (let x = 0; x < width; x++)
      for (let c = 0; c < channels; c++) {
        s = (s * 1103515245 + 12345) & 0x7fffffff;
        const wave = 96 * Math.sin((x + 7 * c) / 9) * Math.cos(y / 13) + ((x * y) % 37);
        out[(y * width + x) * channels + c] = Math.max(
          0,
          Math.min(255, 128 + wave + (s % 31) - 15),
        );
      }
  return out;
}

async function inputs(): Promise<{ name: string; image: Buffer }[]> {
  const raw = (w: number, h: number, ch: 1 | 2 | 3 | 4, seed: number) =>
    sharp(texture(w, h, ch, seed), { raw: { width: w, height: h, channels: ch } });
  const out = [
    {
      name: 'grey JPEG (one component), camera-sized',
      image: await raw(1280, 1024, 1, 1).toColourspace('b-w').jpeg({ quality: 90 }).toBuffer(),
    },
    {
      name: 'grey JPEG (one component), small',
      image: await raw(250, 371, 1, 2).toColourspace('b-w').jpeg({ quality: 90 }).toBuffer(),
    },
    {
      name: 'grey content in a YCbCr JPEG',
      image: await raw(640, 512, 1, 3).jpeg({ quality: 90 }).toBuffer(),
    },
    { name: 'colour JPEG', image: await raw(320, 256, 3, 4).jpeg({ quality: 85 }).toBuffer() },
    {
      name: 'colour JPEG rotated by EXIF',
      image: await raw(200, 120, 3, 5).jpeg().withMetadata({ orientation: 6 }).toBuffer(),
    },
    {
      name: 'grey JPEG rotated by EXIF',
      image: await raw(200, 120, 1, 6)
        .toColourspace('b-w')
        .jpeg()
        .withMetadata({ orientation: 6 })
        .toBuffer(),
    },
    {
      name: 'progressive grey JPEG',
      image: await raw(300, 200, 1, 7).toColourspace('b-w').jpeg({ progressive: true }).toBuffer(),
    },
    { name: 'RGBA PNG', image: await raw(90, 70, 4, 8).png().toBuffer() },
    { name: 'grey PNG', image: await raw(90, 70, 1, 9).png().toBuffer() },
    { name: 'grey+alpha PNG', image: await raw(90, 70, 2, 10).png().toBuffer() },
    {
      name: 'upscaled grey JPEG',
      image: await raw(20, 16, 1, 11).toColourspace('b-w').jpeg().toBuffer(),
    },
  ];
  // Real line images when the development dataset is beside the repository (not in CI).
  const mtd = join(import.meta.dirname, '../../../../shared/datasets/mtd/MT_Blowhole/Imgs');
  if (existsSync(mtd)) {
    for (const file of readdirSync(mtd)
      .filter((f) => f.endsWith('.jpg'))
      .slice(0, 6))
      out.push({ name: `MTD ${file}`, image: readFileSync(join(mtd, file)) });
  }
  return out;
}

describe('decodeImagePixels parity', () => {
  it('gives specs without resizeKernel the previous pixels, byte for byte', async () => {
    const specs = [
      spec(),
      spec({ width: 256, height: 256 }),
      spec({ resize: 'cover' }),
      spec({ resize: 'contain', width: 40, height: 64 }),
      spec({ channels: 3, mean: [0, 0, 0], std: [1, 1, 1] }),
      spec({ channels: 3, mean: [0, 0, 0], std: [1, 1, 1], resize: 'contain' }),
    ];
    let compared = 0;
    for (const { name, image } of await inputs()) {
      for (const s of specs) {
        const before = await previousDecode(image, s);
        const now = Buffer.from(await decodeImagePixels(image, s));
        expect(
          now.equals(before),
          `${name}, ${s.channels} ch ${s.resize} ${s.width}x${s.height}`,
        ).toBe(true);
        compared++;
      }
    }
    expect(compared).toBeGreaterThanOrEqual(66);
  });

  it('resizes with the kernel a spec names, converting colour after the resize', async () => {
    // Two pixels, black and white, upscaled 2x: nearest repeats them, linear blends.
    const image = await sharp(Buffer.from([0, 255]), { raw: { width: 2, height: 1, channels: 1 } })
      .png()
      .toBuffer();
    const up = (k: InputSpec['resizeKernel']) =>
      decodeImagePixels(image, spec({ width: 4, height: 1, resizeKernel: k }));
    expect([...(await up('nearest'))]).toEqual([0, 0, 255, 255]);
    const linear = [...(await up('linear'))];
    expect(linear[0]).toBe(0);
    expect(linear[3]).toBe(255);
    expect(linear.some((v) => v > 0 && v < 255)).toBe(true);

    const frame = await sharp(texture(1280, 1024, 1, 12), {
      raw: { width: 1280, height: 1024, channels: 1 },
    })
      .toColourspace('b-w')
      .jpeg({ quality: 90 })
      .toBuffer();
    const legacy = await decodeImagePixels(frame, spec({ width: 256, height: 256 }));
    const lanczos3 = await decodeImagePixels(
      frame,
      spec({ width: 256, height: 256, resizeKernel: 'lanczos3' }),
    );
    const cheap = await decodeImagePixels(
      frame,
      spec({ width: 256, height: 256, resizeKernel: 'linear' }),
    );
    // A grey frame: naming the default kernel changes nothing; a cheaper kernel changes pixels a little.
    expect(Buffer.from(lanczos3).equals(Buffer.from(legacy))).toBe(true);
    expect(Buffer.from(cheap).equals(Buffer.from(legacy))).toBe(false);
    let diff = 0;
    for (let i = 0; i < cheap.length; i++)
      diff += Math.abs((cheap[i] as number) - (legacy[i] as number));
    expect(diff / cheap.length).toBeLessThan(8);

    // Colour input to a grey spec and to an RGB spec with a kernel.
    const colour = await sharp(texture(160, 120, 3, 13), {
      raw: { width: 160, height: 120, channels: 3 },
    })
      .jpeg()
      .toBuffer();
    expect(await decodeImagePixels(colour, spec({ resizeKernel: 'cubic' }))).toHaveLength(64 * 48);
    expect(
      await decodeImagePixels(
        colour,
        spec({
          channels: 3,
          mean: [0, 0, 0],
          std: [1, 1, 1],
          resize: 'contain',
          resizeKernel: 'mitchell',
        }),
      ),
    ).toHaveLength(64 * 48 * 3);
  });
});

describe('jpegComponents', () => {
  it('reads the component count from the frame header, and nothing else', async () => {
    const grey = await sharp(texture(32, 16, 1, 1), { raw: { width: 32, height: 16, channels: 1 } })
      .toColourspace('b-w')
      .jpeg()
      .toBuffer();
    const ycc = await sharp(texture(32, 16, 1, 1), { raw: { width: 32, height: 16, channels: 1 } })
      .jpeg()
      .toBuffer();
    const progressive = await sharp(texture(32, 16, 3, 2), {
      raw: { width: 32, height: 16, channels: 3 },
    })
      .jpeg({ progressive: true })
      .withMetadata({ orientation: 3 })
      .toBuffer();
    const png = await sharp(texture(8, 8, 1, 3), { raw: { width: 8, height: 8, channels: 1 } })
      .png()
      .toBuffer();
    expect(jpegComponents(grey)).toBe(1);
    expect(jpegComponents(ycc)).toBe(3);
    expect(jpegComponents(progressive)).toBe(3);
    expect(jpegComponents(png)).toBeUndefined();
    expect(jpegComponents(new Uint8Array([0xff, 0xd8]))).toBeUndefined();
    expect(jpegComponents(grey.subarray(0, 30))).toBeUndefined();
    // A segment length that runs past the end, and a zero length: undefined, no throw.
    expect(
      jpegComponents(new Uint8Array([0xff, 0xd8, 0xff, 0xe0, 0xff, 0xff, 0, 0])),
    ).toBeUndefined();
    expect(jpegComponents(new Uint8Array([0xff, 0xd8, 0xff, 0xe0, 0, 0, 0, 0]))).toBeUndefined();
  });
});

describe('jpegComponents marker walk', () => {
  // SOF0 with 8-bit samples, 16x32, one component; the count is the frame header's 8th byte.
  const sof = [0xff, 0xc0, 0x00, 0x0b, 0x08, 0x00, 0x10, 0x00, 0x20, 0x01, 0x01, 0x11, 0x00];
  const soi = [0xff, 0xd8];
  const jpeg = (...parts: number[][]) => Uint8Array.from(parts.flat());

  it('skips fill bytes, markers without a length and empty segments before the frame header', () => {
    expect(jpegComponents(jpeg(soi, sof))).toBe(1);
    expect(jpegComponents(jpeg(soi, [0xff, 0xff, 0xff], sof))).toBe(1);
    expect(jpegComponents(jpeg(soi, [0xff, 0x01], sof))).toBe(1);
    for (const rst of [0xd0, 0xd3, 0xd7])
      expect(jpegComponents(jpeg(soi, [0xff, rst], sof))).toBe(1);
    expect(jpegComponents(jpeg(soi, [0xff, 0xe0, 0x00, 0x02], sof))).toBe(1);
    expect(jpegComponents(jpeg(soi, [0xff, 0xfe, 0x00, 0x05, 0x61, 0x62, 0x63], sof))).toBe(1);
    // A three-component frame header after a progressive marker.
    const sof2 = [...sof];
    sof2[1] = 0xc2;
    sof2[9] = 0x03;
    expect(jpegComponents(jpeg(soi, sof2))).toBe(3);
  });

  it('gives up at a start of scan or an end of image before the frame header', () => {
    expect(jpegComponents(jpeg(soi, [0xff, 0xda, 0x00, 0x02], sof))).toBeUndefined();
    expect(jpegComponents(jpeg(soi, [0xff, 0xd9, 0x00, 0x02], sof))).toBeUndefined();
  });

  it('gives up on a byte that is not a marker, a segment length below 2 or a cut frame header', () => {
    expect(jpegComponents(jpeg(soi, [0x00], sof))).toBeUndefined();
    expect(jpegComponents(jpeg(soi, [0xff, 0xe0, 0x00, 0x01], sof))).toBeUndefined();
    expect(jpegComponents(jpeg(soi, sof.slice(0, 9)))).toBeUndefined();
    expect(jpegComponents(jpeg(soi, sof.slice(0, 10)))).toBe(1);
    expect(jpegComponents(jpeg([0xff, 0xd9], sof))).toBeUndefined();
    expect(jpegComponents(jpeg([0xfe, 0xd8], sof))).toBeUndefined();
  });
});
