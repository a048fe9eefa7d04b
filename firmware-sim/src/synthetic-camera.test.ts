import { describe, it, expect, afterEach } from 'vitest';
import sharp from 'sharp';
import type { Frame, FrameSink } from '@linesight/agent';
import { isLinesightError } from '@linesight/protocol';
import { frameSeed } from './frame-plan.ts';
import { renderSurface } from './render/surface.ts';
import { SyntheticCamera, type SyntheticCameraOptions } from './synthetic-camera.ts';
import { eventually } from '@linesight/testkit/eventually';

interface Recorder extends FrameSink {
  frames: Frame[];
  errors: unknown[];
  arrivedAtMs: number[];
}

function recorder(): Recorder {
  const rec: Recorder = {
    frames: [],
    errors: [],
    arrivedAtMs: [],
    frame(frame) {
      rec.frames.push(frame);
      rec.arrivedAtMs.push(performance.now());
    },
    error(err) {
      rec.errors.push(err);
    },
  };
  return rec;
}

// Only for checking that nothing more happens; never used to wait for an event.
function quietPeriod(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

const cameras: SyntheticCamera[] = [];

function camera(options: SyntheticCameraOptions): SyntheticCamera {
  const cam = new SyntheticCamera(options);
  cameras.push(cam);
  return cam;
}

afterEach(async () => {
  await Promise.all(cameras.splice(0).map((cam) => cam.close()));
});

describe('SyntheticCamera', () => {
  it('describes itself', () => {
    expect(camera({ seed: 1 }).description).toBe('synthetic(seed=1, 256x256 @ 10 fps)');
    expect(camera({ seed: 7, width: 320, height: 240, fps: 2.5 }).description).toBe(
      'synthetic(seed=7, 320x240 @ 2.5 fps)',
    );
  });

  it('delivers JPEG frames with contiguous seq at the configured size', async () => {
    const cam = camera({ seed: 3, width: 96, height: 64, fps: 50 });
    const rec = recorder();
    await cam.start(rec);
    await eventually(() => rec.frames.length >= 5, { intervalMs: 5 });
    await cam.close();
    expect(rec.errors).toEqual([]);
    expect(rec.frames.map((f) => f.seq)).toEqual([...Array(rec.frames.length).keys()]);
    expect(cam.framesDelivered).toBe(rec.frames.length);
    for (const frame of rec.frames.slice(0, 5)) {
      expect(frame.capturedAt).toBeInstanceOf(Date);
      const meta = await sharp(frame.image).metadata();
      expect(meta).toMatchObject({ format: 'jpeg', width: 96, height: 64, channels: 1 });
    }
  });

  it('delivers PNG frames that are exactly the rendered ground truth', async () => {
    const seed = 11;
    const defectRate = 0.5;
    const cam = camera({
      seed,
      width: 64,
      height: 48,
      fps: 100,
      format: 'png',
      defectRate,
      maxFrames: 6,
    });
    const rec = recorder();
    await cam.start(rec);
    await eventually(() => rec.frames.length === 6, { intervalMs: 5 });
    for (const frame of rec.frames) {
      const meta = await sharp(frame.image).metadata();
      expect(meta).toMatchObject({ format: 'png', channels: 1 });
      const { data, info } = await sharp(frame.image)
        .toColourspace('b-w')
        .raw()
        .toBuffer({ resolveWithObject: true });
      expect(info).toMatchObject({ format: 'raw', width: 64, height: 48, channels: 1 });
      const defect = SyntheticCamera.frameDefect(seed, frame.seq, defectRate);
      expect(cam.defectOf(frame.seq)).toBe(defect);
      const expected = renderSurface({
        seed: frameSeed(seed, frame.seq),
        width: 64,
        height: 48,
        defect,
      });
      expect(data.equals(Buffer.from(expected.pixels))).toBe(true);
    }
  });

  it('paces frames at about the configured rate, never faster', async () => {
    const fps = 20;
    const cam = camera({ seed: 5, width: 64, height: 64, fps });
    const rec = recorder();
    const startedAtMs = performance.now();
    await cam.start(rec);
    await eventually(() => rec.frames.length >= 4, { intervalMs: 5 });
    // Frame 3 is due 3 periods after start; timers never fire early by more
    // than a millisecond. Lateness depends on load and is not asserted.
    expect((rec.arrivedAtMs[3] ?? 0) - startedAtMs).toBeGreaterThanOrEqual((3 * 1000) / fps - 2);
  });

  it('stops after maxFrames', async () => {
    const cam = camera({ seed: 2, width: 48, height: 48, fps: 200, maxFrames: 3 });
    const rec = recorder();
    await cam.start(rec);
    await eventually(() => rec.frames.length >= 3, { intervalMs: 5 });
    await quietPeriod(100);
    expect(rec.frames.map((f) => f.seq)).toEqual([0, 1, 2]);
    expect(cam.framesDelivered).toBe(3);
  });

  it('delivers nothing after close() resolves, and close() is idempotent', async () => {
    const cam = camera({ seed: 4, width: 512, height: 512, fps: 500 });
    const rec = recorder();
    await cam.start(rec);
    await eventually(() => rec.frames.length >= 2, { intervalMs: 5 });
    const closing = cam.close();
    expect(cam.close()).toBe(closing);
    await closing;
    const delivered = rec.frames.length;
    await quietPeriod(100);
    expect(rec.frames.length).toBe(delivered);
    expect(cam.framesDelivered).toBe(delivered);
    expect(rec.frames.map((f) => f.seq)).toEqual([...Array(delivered).keys()]);
    await cam.close();
  });

  it('refuses to start twice or after close', async () => {
    const cam = camera({ seed: 1, width: 32, height: 32 });
    await cam.start(recorder());
    await expect(cam.start(recorder())).rejects.toSatisfy((err) =>
      isLinesightError(err, 'ERR_CAMERA'),
    );
    const closed = camera({ seed: 1 });
    await closed.close();
    await expect(closed.start(recorder())).rejects.toSatisfy((err) =>
      isLinesightError(err, 'ERR_CAMERA'),
    );
  });

  it('rejects bad options with ERR_CAMERA naming every problem', () => {
    let caught: unknown;
    try {
      new SyntheticCamera({
        seed: 1,
        width: 10,
        fps: 0,
        defectRate: 2,
        jpegQuality: 0,
        maxFrames: -1,
      });
    } catch (err) {
      caught = err;
    }
    expect(isLinesightError(caught, 'ERR_CAMERA')).toBe(true);
    const message = caught instanceof Error ? caught.message : '';
    for (const name of ['width', 'fps', 'defectRate', 'jpegQuality', 'maxFrames']) {
      expect(message).toContain(name);
    }
  });
});
