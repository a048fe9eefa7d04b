/** Encoded image formats a camera frame may carry. */
export type FrameImageFormat = 'jpeg' | 'png';

const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

/** The format of an encoded image judged by its magic bytes, or undefined when it is neither JPEG nor PNG. */
export function sniffImageFormat(bytes: Uint8Array): FrameImageFormat | undefined {
  // JPEG: SOI (FF D8) followed by the first marker's FF.
  if (bytes.length >= 3 && bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff) {
    return 'jpeg';
  }
  if (bytes.length >= PNG_SIGNATURE.length && PNG_SIGNATURE.equals(bytes.subarray(0, 8))) {
    return 'png';
  }
  return undefined;
}
