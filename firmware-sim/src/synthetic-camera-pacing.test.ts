// Drives the camera's clock with fake timers; encoding is replaced by a stub
// whose duration the test controls, so schedules can be checked exactly.
import { describe, it, expect, vi, beforeEach, afterEach } from 'vitest';
import type { Frame, FrameSink } from '@linesight/agent';
import { isLinesightError } from '@linesight/protocol';
import { encodeGrey } from './encode.ts';
import { SyntheticCamera } from './synthetic-camera.ts';

vi.mock('./encode.ts', async (importOriginal) => {
  const actual = await importOriginal<typeof import('./encode.ts')>();
  return { ...actual, encodeGrey: vi.fn(actual.encodeGrey) };
});

const encode = vi.mocked(encodeGrey);
const IMAGE = Buffer.from('not really a jpeg');

interface Recorder extends FrameSink {
  frames: Frame[];
  errors: unknown[];
  atMs: number[];
}

function recorder(onFrame?: (frame: Frame) => void): Recorder {
  const rec: Recorder = {
    frames: [],
    errors: [],
    atMs: [],
    frame(frame) {
      rec.frames.push(frame);
      rec.atMs.push(performance.now());
      onFrame?.(frame);
    },
    error(err) {
      rec.errors.push(err);
    },
  };
  return rec;
}

// Encode stub: frame number k (0-based call count) takes durationsMs(k) of fake time.
function encodeTaking(durationMs: (call: number) => number): void {
  let call = 0;
  encode.mockImplementation(async () => {
    const ms = durationMs(call);
    call += 1;
    if (ms > 0) await new Promise((resolve) => setTimeout(resolve, ms));
    return IMAGE;
  });
}

let startMs = 0;
let startDateMs = 0;
let cam: SyntheticCamera | undefined;

beforeEach(() => {
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance', 'Date'] });
  startMs = performance.now();
  startDateMs = Date.now();
});

afterEach(async () => {
  // A frame may be mid-encode on the fake clock: let time run until close() resolves.
  const closing = cam?.close();
  await vi.advanceTimersByTimeAsync(1000);
  await closing;
  cam = undefined;
  vi.useRealTimers();
  encode.mockReset();
});

function relative(rec: Recorder): number[] {
  return rec.atMs.map((t) => Math.round(t - startMs));
}

describe('SyntheticCamera pacing', () => {
  it('keeps frames on an absolute schedule, so encode time does not add up', async () => {
    encodeTaking(() => 30);
    cam = new SyntheticCamera({ seed: 1, width: 32, height: 32, fps: 10 });
    const rec = recorder();
    await cam.start(rec);
    await vi.advanceTimersByTimeAsync(1000);
    expect(relative(rec)).toEqual([30, 130, 230, 330, 430, 530, 630, 730, 830, 930]);
    expect(rec.frames.map((f) => f.seq)).toEqual([...Array(10).keys()]);
    // Captured when due, delivered once encoded.
    expect(rec.frames.map((f) => f.capturedAt.getTime() - startDateMs)).toEqual([
      0, 100, 200, 300, 400, 500, 600, 700, 800, 900,
    ]);
  });

  it('after a long stall delivers the next frame at once, then resumes the cadence without a burst', async () => {
    encodeTaking((call) => (call === 2 ? 350 : 0));
    cam = new SyntheticCamera({ seed: 1, width: 32, height: 32, fps: 10 });
    const rec = recorder();
    await cam.start(rec);
    await vi.advanceTimersByTimeAsync(800);
    // Node (and the fake clock) run a 0 ms timer after 1 ms.
    expect(relative(rec)).toEqual([0, 100, 550, 551, 650, 750]);
    expect(rec.frames.map((f) => f.seq)).toEqual([0, 1, 2, 3, 4, 5]);
  });

  it('absorbs lateness under one period by catching up a single frame', async () => {
    encodeTaking((call) => (call === 2 ? 150 : 0));
    cam = new SyntheticCamera({ seed: 1, width: 32, height: 32, fps: 10 });
    const rec = recorder();
    await cam.start(rec);
    await vi.advanceTimersByTimeAsync(500);
    // Frame 3 was due at 300: it goes out right away (a 0 ms timer runs after 1 ms).
    expect(relative(rec)).toEqual([0, 100, 350, 351, 400, 500]);
  });

  it('reports a failed frame as ERR_CAMERA and retries the same seq a period later', async () => {
    let call = 0;
    encode.mockImplementation(async () => {
      call += 1;
      if (call === 2) throw new Error('encoder out of memory');
      return IMAGE;
    });
    cam = new SyntheticCamera({ seed: 1, width: 32, height: 32, fps: 10 });
    const rec = recorder();
    await cam.start(rec);
    await vi.advanceTimersByTimeAsync(400);
    expect(rec.errors).toHaveLength(1);
    expect(isLinesightError(rec.errors[0], 'ERR_CAMERA')).toBe(true);
    expect((rec.errors[0] as Error).cause).toBeInstanceOf(Error);
    expect(rec.frames.map((f) => f.seq)).toEqual([0, 1, 2, 3]);
    expect(relative(rec)).toEqual([0, 200, 300, 400]);
  });

  it('reports a throwing sink as ERR_CAMERA and keeps going', async () => {
    encodeTaking(() => 0);
    cam = new SyntheticCamera({ seed: 1, width: 32, height: 32, fps: 10 });
    const rec = recorder((frame) => {
      if (frame.seq === 1) throw new Error('sink bug');
    });
    await cam.start(rec);
    await vi.advanceTimersByTimeAsync(300);
    expect(rec.frames.map((f) => f.seq)).toEqual([0, 1, 2, 3]);
    expect(rec.errors).toHaveLength(1);
    expect(isLinesightError(rec.errors[0], 'ERR_CAMERA')).toBe(true);
  });

  it('close() waits for the frame being encoded and drops it', async () => {
    let release: ((image: Buffer) => void) | undefined;
    let call = 0;
    encode.mockImplementation(() => {
      call += 1;
      if (call === 2) return new Promise<Buffer>((resolve) => (release = resolve));
      return Promise.resolve(IMAGE);
    });
    const camera = new SyntheticCamera({ seed: 1, width: 32, height: 32, fps: 10 });
    cam = camera;
    const rec = recorder();
    await camera.start(rec);
    await vi.advanceTimersByTimeAsync(100);
    expect(release).toBeDefined();
    let closed = false;
    const closing = camera.close().then(() => {
      closed = true;
    });
    await vi.advanceTimersByTimeAsync(50);
    expect(closed).toBe(false);
    release?.(IMAGE);
    await closing;
    await vi.advanceTimersByTimeAsync(1000);
    expect(rec.frames.map((f) => f.seq)).toEqual([0]);
    expect(camera.framesDelivered).toBe(1);
    expect(rec.errors).toEqual([]);
  });
});
