import { describe, expect, it } from 'vitest';
import { MjpegParser } from '@linesight/agent';
import { MjpegReplay, mjpegPart, type MissedCause } from './mjpeg-replay.ts';

// Two tiny structurally valid JPEGs (SOI, a comment segment, EOI).
const jpeg = (tag: number) => Buffer.from([0xff, 0xd8, 0xff, 0xfe, 0x00, 0x03, tag, 0xff, 0xd9]);

describe('mjpegPart', () => {
  it('is a multipart part the agent parser reads back with its capture time', () => {
    const seen: { tag: number; at: number | undefined }[] = [];
    const parser = new MjpegParser({
      onFrame: (frame, part) => seen.push({ tag: frame[6]!, at: part.timestampMs }),
    });
    parser.push(Buffer.concat([mjpegPart(jpeg(1), 1764236400123), mjpegPart(jpeg(2), 5.5)]));
    expect(seen).toEqual([
      { tag: 1, at: 1764236400123 },
      { tag: 2, at: 5 },
    ]);
  });
});

describe('MjpegReplay', () => {
  it('sends one frame a period in turn, and tells skipped slots of a slow reader from its own lateness', async () => {
    const baseMs = 1_000_000;
    let clockMs = baseMs;
    const parts: Buffer[] = [];
    const missed: [number, MissedCause][] = [];
    let wrote: () => void = () => {};
    const written = (n: number) =>
      new Promise<void>((resolve) => {
        wrote = () => {
          if (parts.length >= n) resolve();
        };
        wrote();
      });
    const replay = new MjpegReplay({
      frames: [jpeg(1), jpeg(2)],
      fps: 10,
      now: () => clockMs,
      write: (part) => {
        parts.push(part);
        // The 3rd write blocks 350 ms: the reader stopped reading for a while.
        if (parts.length === 3) clockMs += 350;
        wrote();
        return true;
      },
      drained: () => Promise.resolve(),
      onMissed: (dueMs, cause) => missed.push([dueMs - baseMs, cause]),
    });
    replay.start(); // Slot 0 at once.
    clockMs += 100;
    await written(2); // Slot 1.
    clockMs += 250; // The camera's process wakes at 350 for slot 2: late.
    await written(3); // Slot 3, whose write blocks until 700.
    await written(4); // Slot 7 at once; 4, 5 and 6 were due while the write waited.
    replay.close();
    expect(missed).toEqual([
      [200, 'late'],
      [400, 'blocked'],
      [500, 'blocked'],
      [600, 'blocked'],
    ]);
    expect(replay.stats).toEqual({ sent: 4, missedBlocked: 3, missedLate: 1 });
    const tags = parts.map((p) => p[p.length - 5]); // The frame's tag before EOI and CRLF.
    expect(tags).toEqual([1, 2, 2, 2]); // Slots 0, 1, 3 and 7 of two frames in turn.
  });

  it('refuses no frames or a bad rate', () => {
    const base = { write: () => true, drained: () => Promise.resolve() };
    expect(() => new MjpegReplay({ ...base, frames: [], fps: 10 })).toThrow(RangeError);
    expect(() => new MjpegReplay({ ...base, frames: [jpeg(1)], fps: 0 })).toThrow(RangeError);
  });
});
