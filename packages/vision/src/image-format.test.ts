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
