import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { readImageHeader, sniffImageFormat } from './image-format.ts';

function image(width: number, height: number) {
  return sharp({
    create: { width, height, channels: 3, background: { r: 90, g: 90, b: 90 } },
  });
}

describe('image format', () => {
  it('tells JPEG and PNG by their magic bytes, and nothing else', async () => {
    const jpeg = await image(20, 10).jpeg().toBuffer();
    const png = await image(20, 10).png().toBuffer();
    const webp = await image(20, 10).webp().toBuffer();
    expect(sniffImageFormat(jpeg)).toBe('jpeg');
    expect(sniffImageFormat(png)).toBe('png');
    expect(sniffImageFormat(webp)).toBeUndefined();
    expect(sniffImageFormat(new Uint8Array([0xff, 0xd8]))).toBeUndefined();
    expect(sniffImageFormat(png.subarray(0, 7))).toBeUndefined();
  });

  it('reads the pixel size from the header without decoding', async () => {
    expect(readImageHeader(await image(37, 23).jpeg().toBuffer())).toEqual({
      format: 'jpeg',
      width: 37,
      height: 23,
    });
    expect(readImageHeader(await image(37, 23).toColourspace('b-w').jpeg().toBuffer())).toEqual({
      format: 'jpeg',
      width: 37,
      height: 23,
    });
    expect(readImageHeader(await image(41, 19).png().toBuffer())).toEqual({
      format: 'png',
      width: 41,
      height: 19,
    });
  });

  it('names the format but not the size when the header is cut short', async () => {
    const jpeg = await image(37, 23).jpeg().toBuffer();
    expect(readImageHeader(jpeg.subarray(0, 6))).toEqual({
      format: 'jpeg',
      width: undefined,
      height: undefined,
    });
    const png = await image(41, 19).png().toBuffer();
    expect(readImageHeader(png.subarray(0, 16))).toEqual({
      format: 'png',
      width: undefined,
      height: undefined,
    });
    expect(readImageHeader(Buffer.from('GIF89a'))).toBeUndefined();
  });
});

describe('JPEG header walk', () => {
  // SOF0: length 11, 8-bit samples, height 16, width 32, one component.
  const sof = (marker = 0xc0) => [0xff, marker, 0x00, 0x0b, 0x08, 0x00, 0x10, 0x00, 0x20, 0x01];
  const soi = [0xff, 0xd8];
  const jpeg = (...parts: number[][]) => Uint8Array.from(parts.flat());
  const size = (bytes: Uint8Array) => {
    const header = readImageHeader(bytes);
    return header === undefined ? undefined : [header.width, header.height];
  };

  it('reads the size from every start-of-frame marker and no other', () => {
    for (const marker of [0xc0, 0xc1, 0xc2, 0xc3, 0xc5, 0xc7, 0xcb, 0xcd, 0xcf])
      expect(size(jpeg(soi, sof(marker))), marker.toString(16)).toEqual([32, 16]);
    // DHT, JPG and DAC sit in the same range but are not frame headers: skipped by their length.
    for (const marker of [0xc4, 0xc8, 0xcc]) {
      const segment = [0xff, marker, 0x00, 0x08, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06];
      expect(size(jpeg(soi, segment, sof())), marker.toString(16)).toEqual([32, 16]);
    }
    expect(size(jpeg(soi, [0xff, 0xbf, 0x00, 0x08, 1, 2, 3, 4, 5, 6], sof()))).toEqual([32, 16]);
    expect(size(jpeg(soi, [0xff, 0xe1, 0x00, 0x08, 1, 2, 3, 4, 5, 6], sof()))).toEqual([32, 16]);
  });

  it('skips fill bytes and markers without a length', () => {
    expect(size(jpeg(soi, [0xff, 0xff], sof()))).toEqual([32, 16]);
    expect(size(jpeg(soi, [0xff, 0xe0, 0x00, 0x02], sof()))).toEqual([32, 16]);
    for (const marker of [0x01, 0xd0, 0xd7, 0xd8, 0xd9])
      expect(size(jpeg(soi, [0xff, marker], sof())), marker.toString(16)).toEqual([32, 16]);
  });

  it('gives no size past a start of scan, a bad length, a non-marker byte or a cut frame header', () => {
    const none = [undefined, undefined];
    expect(size(jpeg(soi, [0xff, 0xda, 0x00, 0x02], sof()))).toEqual(none);
    expect(size(jpeg(soi, [0xff, 0xe0, 0x00, 0x01], sof()))).toEqual(none);
    expect(size(jpeg(soi, [0xff, 0xe0, 0x00, 0x00], sof()))).toEqual(none);
    expect(size(jpeg(soi, [0xff, 0x00], sof()))).toEqual(none);
    expect(size(jpeg(soi, [0xff, 0xe0, 0x00, 0x02], [0x00], sof()))).toEqual(none);
    expect(size(jpeg(soi, sof().slice(0, 8)))).toEqual(none);
    expect(size(jpeg(soi, sof().slice(0, 9)))).toEqual([32, 16]);
  });
});

describe('PNG header', () => {
  it('reads the size from a header that is a view into a larger buffer', async () => {
    const png = await image(41, 19).png().toBuffer();
    const pool = new Uint8Array(png.length + 13).fill(7);
    pool.set(png, 13);
    expect(readImageHeader(pool.subarray(13))).toEqual({ format: 'png', width: 41, height: 19 });
    expect(readImageHeader(pool.subarray(13, 13 + 24))).toEqual({
      format: 'png',
      width: 41,
      height: 19,
    });
    expect(readImageHeader(pool.subarray(13, 13 + 23))?.width).toBeUndefined();
  });

  it('gives no size when the first chunk is not IHDR', async () => {
    const png = Buffer.from(await image(41, 19).png().toBuffer());
    png.write('IHDX', 12, 'latin1');
    expect(readImageHeader(png)).toEqual({ format: 'png', width: undefined, height: undefined });
  });

  it('needs the whole signature: 8 bytes for PNG, 3 for JPEG', () => {
    const signature = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
    expect(sniffImageFormat(Uint8Array.from(signature))).toBe('png');
    for (let i = 0; i < 8; i++) {
      const broken = [...signature];
      broken[i] = (broken[i] as number) ^ 0x20;
      expect(sniffImageFormat(Uint8Array.from(broken)), String(i)).toBeUndefined();
    }
    expect(sniffImageFormat(Uint8Array.of(0xff, 0xd8, 0xff))).toBe('jpeg');
    expect(sniffImageFormat(Uint8Array.of(0xff, 0xd8, 0xfe))).toBeUndefined();
    expect(sniffImageFormat(Uint8Array.of(0xff, 0xd9, 0xff))).toBeUndefined();
    expect(sniffImageFormat(Uint8Array.of(0xfe, 0xd8, 0xff))).toBeUndefined();
    expect(readImageHeader(Uint8Array.of(0xff, 0xd8, 0xff))).toEqual({
      format: 'jpeg',
      width: undefined,
      height: undefined,
    });
  });
});
