import type { FrameResult } from '@linesight/protocol';

/**
 * The result of a frame no model scored (dropped for overload, or answered by a
 * line guard while its worker was away): `unknown`, no model, no score, with
 * its reason; the whole wait counts as queue time.
 */
export function unscoredResult(o: {
  deviceId: string;
  seq: number;
  capturedAt: Date;
  reason: string;
  /** Capture to arrival at the agent, and arrival to this answer. */
  captureMs: number;
  waitedMs: number;
}): FrameResult {
  return {
    schema: 'linesight.result/v1',
    deviceId: o.deviceId,
    seq: o.seq,
    capturedAt: o.capturedAt.toISOString(),
    verdict: 'unknown',
    score: null,
    threshold: null,
    model: null,
    reason: o.reason,
    latencyMs: {
      capture: o.captureMs,
      queue: o.waitedMs,
      preprocess: 0,
      inference: 0,
      total: o.waitedMs,
    },
  };
}
