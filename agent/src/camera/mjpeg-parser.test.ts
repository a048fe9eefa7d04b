import { describe, it, expect, beforeAll } from 'vitest';
import sharp from 'sharp';
import {
  MjpegParser,
  partTimestampMs,
  type MjpegDrop,
  type MjpegParserOptions,
} from './mjpeg-parser.ts';

const bytes = (...values: number[]): Buffer => Buffer.from(values);

function segment(marker: number, payload: Buffer): Buffer {
  const length = payload.length + 2;
  return Buffer.concat([bytes(0xff, marker, length >> 8, length & 0xff), payload]);
}

/**
 * A structurally valid JPEG-like frame that trips naive parsers: an APP1
 * segment holding an embedded thumbnail (its own FF D8 .. FF D9), entropy
 * data with stuffed FF 00 bytes, a restart marker and fill bytes.
 */
function trickyFrame(tag: number): Buffer {
  const thumbnail = bytes(0xff, 0xd8, 0xff, 0xdb, 0x00, 0x03, 0x07, 0xff, 0xd9);
  return Buffer.concat([
    bytes(0xff, 0xd8),
    segment(0xe1, Buffer.concat([Buffer.from('Exif\0\0'), thumbnail, bytes(tag)])),
    segment(0xdb, Buffer.alloc(65, tag)),
    segment(0xda, bytes(1, 1, 0, 0, 0x3f, 0)),
    bytes(0x12, 0xff, 0x00, 0xd9, 0x34, 0xff, 0x00, 0xff, 0x00, 0xd8, 0x56),
    bytes(0xff, 0xd0, 0x78, tag, 0xff, 0x00),
    bytes(0xff, 0xff, 0xd9), // A fill byte before EOI.
  ]);
}

interface Run {
  frames: Buffer[];
  drops: MjpegDrop[];
  parser: MjpegParser;
}

function run(chunks: Buffer[], options: Partial<MjpegParserOptions> = {}): Run {
  const result: Run = {
    frames: [],
    drops: [],
    parser: new MjpegParser({
      ...options,
      onFrame: (jpeg) => result.frames.push(jpeg),
      onDrop: (drop) => result.drops.push(drop),
    }),
  };
  for (const chunk of chunks) result.parser.push(chunk);
  return result;
}

function splitEvery(buf: Buffer, size: number): Buffer[] {
  const chunks: Buffer[] = [];
  for (let i = 0; i < buf.length; i += size) chunks.push(buf.subarray(i, i + size));
  return chunks;
}

// A real JPEG of noise at quality 100, so its entropy data is full of stuffed FF 00.
let noiseJpeg: Buffer;
let smallJpeg: Buffer;

beforeAll(async () => {
  const width = 64;
  const height = 48;
  const pixels = Buffer.alloc(width * height * 3);
  let x = 12345;
  for (let i = 0; i < pixels.length; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    pixels[i] = x >>> 24;
  }
  noiseJpeg = await sharp(pixels, { raw: { width, height, channels: 3 } })
    .jpeg({ quality: 100 })
    .toBuffer();
  smallJpeg = await sharp({
    create: { width: 8, height: 8, channels: 3, background: { r: 200, g: 10, b: 10 } },
  })
    .jpeg()
    .toBuffer();
});

describe('MjpegParser', () => {
  it("reads each part's X-Timestamp header, whatever the chunk boundaries", () => {
    const part = (jpeg: Buffer, headers: string) =>
      Buffer.concat([Buffer.from(`--b\r\nContent-Type: image/jpeg\r\n${headers}\r\n`), jpeg]);
    const stream = Buffer.concat([
      part(smallJpeg, 'X-Timestamp: 1764236400.123456\r\n'),
      part(trickyFrame(3), 'x-timestamp:1764236400.2\r\nContent-Length: 9\r\n'),
      part(smallJpeg, ''),
      part(noiseJpeg, 'X-Timestamp: soon\r\n'),
    ]);
    for (const size of [1, 5, 64, stream.length]) {
      const seen: (number | undefined)[] = [];
      const parser = new MjpegParser({ onFrame: (_, info) => seen.push(info.timestampMs) });
      for (const chunk of splitEvery(stream, size)) parser.push(chunk);
      expect(seen, `chunks of ${size}`).toEqual([
        1764236400123,
        1764236400200,
        undefined,
        undefined,
      ]);
    }
  });

  it('parses X-Timestamp seconds with or without a fraction', () => {
    expect(partTimestampMs('X-Timestamp: 12\r\n')).toBe(12_000);
    expect(partTimestampMs('--b\nX-Timestamp: 12.5\n')).toBe(12_500);
    expect(partTimestampMs('X-Timestamp: 12.0456789\r\n')).toBe(12_045);
    expect(partTimestampMs('X-Timestamp-Other: 12\r\n')).toBeUndefined();
    expect(partTimestampMs('X-Timestamp: -1\r\n')).toBeUndefined();
  });

  it('delivers one frame pushed in one chunk, as a copy', () => {
    const input = Buffer.from(noiseJpeg);
    const { frames, drops, parser } = run([input]);
    expect(frames).toHaveLength(1);
    expect(frames[0]?.equals(noiseJpeg)).toBe(true);
    input.fill(0); // The caller may reuse its buffer.
    expect(frames[0]?.equals(noiseJpeg)).toBe(true);
    expect(drops).toEqual([]);
    expect(parser.stats).toMatchObject({ frames: 1, bytesSkipped: 0 });
  });

  it('keeps a real JPEG with stuffed FF 00 bytes whole, and it decodes', async () => {
    const sos = noiseJpeg.indexOf(bytes(0xff, 0xda));
    expect(noiseJpeg.indexOf(bytes(0xff, 0x00), sos)).toBeGreaterThan(sos); // Precondition.
    const { frames } = run([Buffer.concat([noiseJpeg, noiseJpeg])]);
    expect(frames).toHaveLength(2);
    const meta = await sharp(frames[1]).metadata();
    expect(meta).toMatchObject({ format: 'jpeg', width: 64, height: 48 });
  });

  it('delivers several frames from one chunk', () => {
    const frames = [trickyFrame(1), smallJpeg, trickyFrame(2), noiseJpeg];
    const result = run([Buffer.concat(frames)]);
    expect(result.frames.map((f) => f.toString('hex'))).toEqual(
      frames.map((f) => f.toString('hex')),
    );
    expect(result.drops).toEqual([]);
  });

  it('does not end a frame at an FF D9 inside a segment, or start one at FF D8 inside entropy data', () => {
    const frame = trickyFrame(7);
    const { frames, drops } = run([frame]);
    expect(frames).toHaveLength(1);
    expect(frames[0]?.equals(frame)).toBe(true);
    expect(drops).toEqual([]);
  });

  it('reassembles frames split across chunks at every possible point', () => {
    const stream = Buffer.concat([trickyFrame(1), Buffer.from('\r\n'), trickyFrame(2)]);
    for (let cut = 1; cut < stream.length; cut++) {
      const { frames, drops } = run([stream.subarray(0, cut), stream.subarray(cut)]);
      expect(
        frames.map((f) => f.toString('hex')),
        `cut at ${cut}`,
      ).toEqual([trickyFrame(1).toString('hex'), trickyFrame(2).toString('hex')]);
      expect(drops).toEqual([]);
    }
  });

  it('reassembles a stream fed one byte at a time', () => {
    const stream = Buffer.concat([noiseJpeg, smallJpeg, trickyFrame(3)]);
    const { frames } = run(splitEvery(stream, 1));
    expect(frames).toHaveLength(3);
    expect(frames[0]?.equals(noiseJpeg)).toBe(true);
    expect(frames[1]?.equals(smallJpeg)).toBe(true);
    expect(frames[2]?.equals(trickyFrame(3))).toBe(true);
  });

  it('skips garbage between frames, including stray FF bytes', () => {
    const garbage = Buffer.concat([Buffer.from('junk'), bytes(0xff, 0xff, 0x00, 0xff, 0xd9, 0xff)]);
    const stream = Buffer.concat([garbage, smallJpeg, garbage, smallJpeg, garbage, smallJpeg]);
    for (const size of [1, 3, 7, stream.length]) {
      const { frames, drops, parser } = run(splitEvery(stream, size));
      expect(frames).toHaveLength(3);
      expect(frames.every((f) => f.equals(smallJpeg))).toBe(true);
      expect(drops).toEqual([]);
      expect(parser.stats.bytesSkipped).toBe(3 * garbage.length);
    }
  });

  it('tolerates multipart/x-mixed-replace boundaries and part headers', () => {
    const part = (jpeg: Buffer): Buffer =>
      Buffer.concat([
        Buffer.from(
          `--myboundary\r\nContent-Type: image/jpeg\r\nContent-Length: ${jpeg.length}\r\n\r\n`,
        ),
        jpeg,
        Buffer.from('\r\n'),
      ]);
    const stream = Buffer.concat([part(noiseJpeg), part(smallJpeg), part(trickyFrame(4))]);
    const { frames, drops } = run(splitEvery(stream, 100));
    expect(frames).toHaveLength(3);
    expect(frames[2]?.equals(trickyFrame(4))).toBe(true);
    expect(drops).toEqual([]);
  });

  it('drops an oversized frame without keeping its bytes, then resumes', () => {
    const big = noiseJpeg;
    const maxFrameBytes = big.length - 1;
    const stream = Buffer.concat([smallJpeg, big, smallJpeg, big, smallJpeg]);
    for (const size of [17, 4096, stream.length]) {
      const { frames, drops, parser } = run(splitEvery(stream, size), { maxFrameBytes });
      expect(frames).toHaveLength(3);
      expect(frames.every((f) => f.equals(smallJpeg))).toBe(true);
      expect(drops).toEqual([
        { reason: 'oversize', bytes: big.length },
        { reason: 'oversize', bytes: big.length },
      ]);
      expect(parser.stats).toMatchObject({ frames: 3, droppedOversize: 2 });
    }
    // Exactly at the limit is kept.
    expect(run([big], { maxFrameBytes: big.length }).frames).toHaveLength(1);
  });

  it('reports an oversized frame that never ends when the next frame starts', () => {
    const endless = Buffer.concat([
      bytes(0xff, 0xd8),
      segment(0xda, bytes(1, 1, 0, 0, 0x3f, 0)),
      Buffer.alloc(5000, 0x11),
    ]);
    const parsed = run([], { maxFrameBytes: 1000 });
    let maxBuffered = 0;
    for (const chunk of splitEvery(Buffer.concat([endless, smallJpeg]), 64)) {
      parsed.parser.push(chunk);
      maxBuffered = Math.max(maxBuffered, parsed.parser.bufferedBytes);
    }
    expect(maxBuffered).toBeLessThanOrEqual(1000);
    const { frames, drops } = parsed;
    expect(frames).toHaveLength(1);
    expect(drops).toEqual([{ reason: 'oversize', bytes: endless.length }]);
  });

  it('drops a frame cut short by a new SOI or by the end of the stream', () => {
    const cut = noiseJpeg.subarray(0, 300);
    for (const size of [1, 300, 10_000]) {
      const { frames, drops, parser } = run(splitEvery(Buffer.concat([cut, smallJpeg, cut]), size));
      expect(frames).toHaveLength(1);
      expect(frames[0]?.equals(smallJpeg)).toBe(true);
      expect(drops).toEqual([{ reason: 'truncated', bytes: 300 }]);
      expect(parser.inFrame).toBe(true);
      parser.end();
      expect(parser.inFrame).toBe(false);
      expect(drops).toEqual([
        { reason: 'truncated', bytes: 300 },
        { reason: 'truncated', bytes: 300 },
      ]);
      expect(parser.stats.droppedTruncated).toBe(2);
    }
  });

  it('drops bytes after SOI that break marker structure, and resynchronizes', () => {
    const broken = bytes(0xff, 0xd8, 0x12, 0x34);
    const badLength = bytes(0xff, 0xd8, 0xff, 0xe0, 0x00, 0x01);
    const { frames, drops } = run([Buffer.concat([broken, smallJpeg, badLength, smallJpeg])]);
    expect(frames).toHaveLength(2);
    expect(drops).toEqual([
      { reason: 'corrupt', bytes: 2 },
      { reason: 'corrupt', bytes: 6 },
    ]);
  });

  it('refuses a nonsensical maxFrameBytes', () => {
    expect(() => new MjpegParser({ onFrame: () => {}, maxFrameBytes: 0 })).toThrow(RangeError);
  });
});
