import sharp from 'sharp';

/** An image container the synthetic sources can produce. */
export type ImageFormat = 'jpeg' | 'png';

/** Default JPEG quality (1-100) of synthetic images. */
export const DEFAULT_JPEG_QUALITY = 90;

/** Encodes 8-bit greyscale row-major pixels as a single-channel JPEG or PNG. */
export async function encodeGrey(
  pixels: Uint8Array,
  width: number,
  height: number,
  format: ImageFormat,
  jpegQuality = DEFAULT_JPEG_QUALITY,
): Promise<Buffer> {
  // Without 'b-w' sharp widens one-channel input to sRGB and writes three channels.
  const image = sharp(pixels, { raw: { width, height, channels: 1 } }).toColourspace('b-w');
  return format === 'png'
    ? image.png().toBuffer()
    : image.jpeg({ quality: jpegQuality }).toBuffer();
}
