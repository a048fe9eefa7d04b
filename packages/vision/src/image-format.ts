/** Encoded image formats the agent and the cloud accept. */
export type ImageFormat = 'jpeg' | 'png';

/** What the header of an encoded image says, read without decoding it. */
export interface ImageHeader {
  format: ImageFormat;
  /** Pixel size from the header; undefined when the header is too damaged to tell. */
  width: number | undefined;
  height: number | undefined;
}

const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

/** The format of an encoded image judged by its magic bytes, or undefined when it is neither JPEG nor PNG. */
export function sniffImageFormat(bytes: Uint8Array): ImageFormat | undefined {
  // JPEG: SOI (FF D8) followed by the first marker's FF.
  if (bytes.length >= 3 && bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff) {
    return 'jpeg';
  }
  if (bytes.length >= PNG_SIGNATURE.length && PNG_SIGNATURE.every((b, i) => bytes[i] === b)) {
    return 'png';
  }
  return undefined;
}

/** Format and size of a JPEG or PNG from its first bytes; undefined for anything else. */
export function readImageHeader(bytes: Uint8Array): ImageHeader | undefined {
  const format = sniffImageFormat(bytes);
  if (format === 'jpeg') return { format, ...jpegSize(bytes) };
  if (format === 'png') {
    // The first chunk must be IHDR: length(4) "IHDR"(4) width(4) height(4).
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const isIhdr = bytes.length >= 24 && String.fromCharCode(...bytes.subarray(12, 16)) === 'IHDR';
    return {
      format: 'png',
      width: isIhdr ? view.getUint32(16) : undefined,
      height: isIhdr ? view.getUint32(20) : undefined,
    };
  }
  return undefined;
}

// Start-of-frame markers carry the size: C0-CF except DHT (C4), JPG (C8) and DAC (CC).
function isStartOfFrame(marker: number): boolean {
  return marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc;
}

function jpegSize(bytes: Uint8Array): { width: number | undefined; height: number | undefined } {
  let i = 2;
  while (i + 3 < bytes.length) {
    if (bytes[i] !== 0xff) break;
    const marker = bytes[i + 1] as number;
    if (marker === 0xff) {
      i += 1; // fill byte
      continue;
    }
    // Markers without a length: TEM, RSTn, SOI, EOI.
    if (marker === 0x01 || (marker >= 0xd0 && marker <= 0xd9)) {
      i += 2;
      continue;
    }
    const length = ((bytes[i + 2] as number) << 8) | (bytes[i + 3] as number);
    if (isStartOfFrame(marker)) {
      if (i + 8 >= bytes.length) break;
      const height = ((bytes[i + 5] as number) << 8) | (bytes[i + 6] as number);
      const width = ((bytes[i + 7] as number) << 8) | (bytes[i + 8] as number);
      return { width, height };
    }
    if (marker === 0xda || length < 2) break; // start of scan: no frame header before it
    i += 2 + length;
  }
  return { width: undefined, height: undefined };
}
