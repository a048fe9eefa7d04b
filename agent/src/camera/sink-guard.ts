import { LinesightError } from '@linesight/protocol';
import type { Frame, FrameSink } from './camera.ts';

/**
 * Reports `err` to the sink. A sink that throws on an error is a bug in the
 * sink: it surfaces as an uncaught exception, as an EventEmitter without an
 * 'error' listener would, while the camera keeps its own state consistent.
 */
export function reportToSink(sink: FrameSink | undefined, err: LinesightError): void {
  try {
    sink?.error(err);
  } catch (sinkErr) {
    queueMicrotask(() => {
      throw sinkErr;
    });
  }
}

/** Delivers a frame; a sink that throws is reported to its own `error` as ERR_CAMERA. */
export function deliverToSink(sink: FrameSink | undefined, frame: Frame): void {
  try {
    sink?.frame(frame);
  } catch (cause) {
    reportToSink(
      sink,
      new LinesightError('ERR_CAMERA', `frame sink threw on frame ${frame.seq}`, {
        cause,
        details: { seq: frame.seq },
      }),
    );
  }
}
