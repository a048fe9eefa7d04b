import { LinesightError } from '@linesight/protocol';
import { readImageHeader, type ImageHeader } from '@linesight/vision';

/**
 * Checks that bytes are a JPEG or PNG of at most `maxPixels` before they reach
 * the decoder: other formats and tiny-file decompression bombs are refused up
 * front (ERR_IMAGE_DECODE, ERR_CLOUD_PAYLOAD_TOO_LARGE).
 */
export function checkImageHeader(bytes: Uint8Array, maxPixels: number): ImageHeader {
  const header = readImageHeader(bytes);
  if (header === undefined) {
    throw new LinesightError(
      'ERR_IMAGE_DECODE',
      `body is not a JPEG or PNG image (${bytes.byteLength} bytes${bytes.byteLength > 0 ? `, starting ${hexPrefix(bytes)}` : ''})`,
    );
  }
  const { width, height } = header;
  if (width !== undefined && height !== undefined && width * height > maxPixels) {
    throw new LinesightError(
      'ERR_CLOUD_PAYLOAD_TOO_LARGE',
      `image is ${width}x${height} pixels; the limit is ${maxPixels} pixels`,
    );
  }
  return header;
}

function hexPrefix(bytes: Uint8Array): string {
  return `0x${Buffer.from(bytes.subarray(0, 4)).toString('hex')}`;
}
