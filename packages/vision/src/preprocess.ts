import sharp, { type Sharp } from 'sharp';
import { LinesightError, type InputSpec, type ResizeKernel } from '@linesight/protocol';

const BLACK = { r: 0, g: 0, b: 0, alpha: 1 };

/**
 * Decodes an encoded image (JPEG, PNG, WebP, TIFF...) into 8-bit HWC pixels of
 * `spec.width` x `spec.height` with `spec.channels` channels (1 = greyscale,
 * 3 = sRGB; alpha dropped), resized with `fit: spec.resize`. Throws ERR_IMAGE_DECODE.
 *
 * A spec without `resizeKernel` gets exactly the pixels models were trained
 * with before that field existed (lanczos3, colour converted before the
 * resize). A spec with it is resized with that kernel and converted to grey or
 * sRGB after the resize, where there are fewer pixels to convert.
 */
export async function decodeImagePixels(image: Uint8Array, spec: InputSpec): Promise<Uint8Array> {
  let data: Buffer;
  let channels: number;
  try {
    // failOn 'error' also rejects truncated JPEG/PNG data instead of returning a half-grey frame.
    const pipeline = sharp(image, { failOn: 'error', sequentialRead: true }).autoOrient();
    const out = await (
      spec.resizeKernel === undefined
        ? legacyPipeline(pipeline, image, spec)
        : kernelPipeline(pipeline, spec, spec.resizeKernel)
    )
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
 * The pipeline of specs without `resizeKernel`, pixel for pixel. One shortcut
 * only: a one-component (grey) JPEG needs no greyscale conversion before the
 * resize, and sharp's `greyscale()` costs a colourspace pass over the decoded
 * frame even then; its output with 'b-w' as the output colourspace is the same
 * bytes (preprocess.test.ts holds both pipelines to that).
 */
function legacyPipeline(pipeline: Sharp, image: Uint8Array, spec: InputSpec): Sharp {
  const resized = pipeline.resize(spec.width, spec.height, { fit: spec.resize, background: BLACK });
  const coloured =
    spec.channels === 3
      ? resized.toColourspace('srgb')
      : jpegComponents(image) === 1
        ? resized.toColourspace('b-w')
        : resized.greyscale();
  return coloured.removeAlpha();
}

function kernelPipeline(pipeline: Sharp, spec: InputSpec, kernel: ResizeKernel): Sharp {
  return pipeline
    .resize(spec.width, spec.height, { fit: spec.resize, background: BLACK, kernel })
    .toColourspace(spec.channels === 1 ? 'b-w' : 'srgb')
    .removeAlpha();
}

const SOF_MARKERS = new Set([
  0xc0, 0xc1, 0xc2, 0xc3, 0xc5, 0xc6, 0xc7, 0xc9, 0xca, 0xcb, 0xcd, 0xce, 0xcf,
]);

/**
 * The number of colour components a JPEG declares in its frame header, or
 * undefined when `image` is not a JPEG or the header is not where expected.
 * Reads markers only (no entropy-coded data); bounded by the buffer.
 */
export function jpegComponents(image: Uint8Array): number | undefined {
  if (image.length < 4 || image[0] !== 0xff || image[1] !== 0xd8) return undefined;
  let i = 2;
  while (i + 3 < image.length) {
    if (image[i] !== 0xff) return undefined;
    const marker = image[i + 1] as number;
    if (marker === 0xff) {
      i++; // fill byte
      continue;
    }
    if (marker === 0x01 || (marker >= 0xd0 && marker <= 0xd7)) {
      i += 2;
      continue;
    }
    const length = ((image[i + 2] as number) << 8) | (image[i + 3] as number);
    if (length < 2) return undefined;
    if (SOF_MARKERS.has(marker)) return i + 9 < image.length ? image[i + 9] : undefined;
    // Start of scan or end of image before a frame header: not a JPEG we understand.
    if (marker === 0xda || marker === 0xd9) return undefined;
    i += 2 + length;
  }
  return undefined;
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
