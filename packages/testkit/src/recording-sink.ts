// A frame sink that records what a camera delivers, for the camera tests.
import type { Frame, FrameSink } from '@linesight/agent';

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
