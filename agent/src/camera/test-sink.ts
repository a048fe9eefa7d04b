// Test helpers shared by the camera tests; not exported from the package.
import type { Frame, FrameSink } from './camera.ts';

/** A sink that records what a camera delivers, with arrival times (performance.now()). */
export interface RecordingSink extends FrameSink {
  frames: Frame[];
  errors: unknown[];
  frameAtMs: number[];
  errorAtMs: number[];
}

/** Makes a recording sink; `onFrame` runs after each frame is recorded. */
export function recordingSink(onFrame?: (frame: Frame) => void): RecordingSink {
  const sink: RecordingSink = {
    frames: [],
    errors: [],
    frameAtMs: [],
    errorAtMs: [],
    frame(frame) {
      sink.frames.push(frame);
      sink.frameAtMs.push(performance.now());
      onFrame?.(frame);
    },
    error(err) {
      sink.errors.push(err);
      sink.errorAtMs.push(performance.now());
    },
  };
  return sink;
}

/** Polls `condition` every few ms until it holds; rejects after `timeoutMs` (real time). */
export async function until(
  condition: () => boolean,
  timeoutMs = 10_000,
  what = 'condition',
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`${what} not met within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}
