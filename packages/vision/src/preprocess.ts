import sharp from 'sharp';
import { LinesightError, type InputSpec } from '@linesight/protocol';

/**
 * Decodes an encoded image (JPEG, PNG, WebP, TIFF...) into 8-bit HWC pixels of
 * `spec.width` x `spec.height` with `spec.channels` channels (1 = greyscale,
 * 3 = sRGB; alpha dropped), resized with `fit: spec.resize`. Throws ERR_IMAGE_DECODE.
 */
export async function decodeImagePixels(image: Uint8Array, spec: InputSpec): Promise<Uint8Array> {
  let data: Buffer;
  let channels: number;
  try {
    // failOn 'error' also rejects truncated JPEG/PNG data instead of returning a half-grey frame.
    let pipeline = sharp(image, { failOn: 'error', sequentialRead: true })
      .autoOrient()
      .resize(spec.width, spec.height, {
        fit: spec.resize,
        background: { r: 0, g: 0, b: 0, alpha: 1 },
      });
    pipeline = spec.channels === 1 ? pipeline.greyscale() : pipeline.toColourspace('srgb');
    const out = await pipeline
      .removeAlpha()
      .raw({ depth: 'uchar' })
      .toBuffer({ resolveWithObject: true });
    data = out.data;
    channels = out.info.channels;
  } catch (cause) {
    throw new LinesightError(
      'ERR_IMAGE_DECODE',
      `image cannot be decoded (${image.byteLength} bytes)`,
      { cause },
    );
  }
  const expected = spec.width * spec.height * spec.channels;
  if (channels !== spec.channels || data.length !== expected) {
    throw new LinesightError(
      'ERR_IMAGE_DECODE',
      `decoded image has ${channels} channels and ${data.length} bytes, expected ${spec.channels} and ${expected}`,
    );
  }
  return new Uint8Array(data.buffer, data.byteOffset, data.length);
}

/**
 * Turns 8-bit HWC interleaved pixels into an NCHW float32 tensor with
 * `(pixel * scale - mean[c]) / std[c]`; the one place that arithmetic lives,
 * so training and inference normalize identically.
 */
export function rawToTensor(pixels: Uint8Array, spec: InputSpec): Float32Array {
  const { channels, width, height } = spec;
  const plane = width * height;
  if (pixels.length !== plane * channels) {
    throw new LinesightError(
      'ERR_IMAGE_DECODE',
      `pixel buffer has ${pixels.length} bytes, expected ${plane * channels} for ${width}x${height}x${channels}`,
    );
  }
  // A 256-entry table per channel: each pixel is then one lookup, and the
  // values are exactly the double-precision formula rounded once to float32.
  const tables = normalizationTables(spec);
  const out = new Float32Array(plane * channels);
  if (channels === 1) {
    const t0 = tables[0] as Float32Array;
    for (let i = 0; i < plane; i++) out[i] = t0[pixels[i] as number] as number;
    return out;
  }
  for (let c = 0; c < channels; c++) {
    const t = tables[c] as Float32Array;
    const base = c * plane;
    for (let i = 0, j = c; i < plane; i++, j += channels)
      out[base + i] = t[pixels[j] as number] as number;
  }
  return out;
}

/** Decodes, resizes and normalizes an encoded image into the NCHW float32 input `spec` describes. */
export async function preprocessImage(image: Uint8Array, spec: InputSpec): Promise<Float32Array> {
  return rawToTensor(await decodeImagePixels(image, spec), spec);
}

function normalizationTables(spec: InputSpec): Float32Array[] {
  const tables: Float32Array[] = [];
  for (let c = 0; c < spec.channels; c++) {
    const mean = spec.mean[c];
    const std = spec.std[c];
    if (mean === undefined || std === undefined || !(std > 0)) {
      throw new LinesightError(
        'ERR_MODEL_CONTRACT',
        `input spec needs a mean and a positive std for channel ${c}`,
      );
    }
    const table = new Float32Array(256);
    for (let p = 0; p < 256; p++) table[p] = (p * spec.scale - mean) / std;
    tables.push(table);
  }
  return tables;
}
