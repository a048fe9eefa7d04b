import type { FrameResult } from '@linesight/protocol';
import type { Frame } from '../camera/camera.ts';
import type { AgentHttpStatus } from '../http/agent-http-server.ts';

/**
 * Messages between a line guard and its worker over the fork's IPC channel
 * (advanced serialization: image bytes travel as a Uint8Array, not as JSON).
 */

/** Guard -> worker: one camera frame to score. */
export interface FrameMessage {
  type: 'frame';
  seq: number;
  capturedAtMs: number;
  image: Uint8Array;
}

/** A verdict the guard told the line and no worker recorded, for a worker's verdict log. */
export interface HandoverEntry {
  result: FrameResult;
  /**
   * The worker the frame had been sent to before it died (its result never came back): it
   * may have recorded the frame itself, which the next worker checks before writing it.
   */
  sentToPid?: number;
}

/** Guard -> worker: verdicts the line was told while no worker recorded them, for the verdict log. */
export interface RecordMessage {
  type: 'record';
  entries: HandoverEntry[];
}

/** Messages a guard sends. */
export type GuardMessage = FrameMessage | RecordMessage;

/** Worker -> guard: the agent started and takes frames. */
export interface ReadyMessage {
  type: 'ready';
  pid: number;
}

/** Worker -> guard: the verdict of one frame (in frame order). */
export interface ResultMessage {
  type: 'result';
  result: FrameResult;
}

/** Worker -> guard: the agent's status for the line's HTTP endpoint and telemetry. */
export interface StatusMessage {
  type: 'status';
  status: AgentHttpStatus;
}

/** Worker -> guard: how many handed-over verdicts it wrote to its verdict log (0: it has no store). */
export interface RecordedMessage {
  type: 'recorded';
  count: number;
  /** Verdicts not written because the worker they had been sent to recorded them itself. */
  skipped: number;
  /** The verdicts it could not write (no store yet), for the guard to keep. */
  unrecorded: HandoverEntry[];
}

/** Messages a worker sends. */
export type WorkerMessage = ReadyMessage | ResultMessage | StatusMessage | RecordedMessage;

/** A frame as a message. */
export function frameMessage(frame: Frame): FrameMessage {
  return {
    type: 'frame',
    seq: frame.seq,
    capturedAtMs: frame.capturedAt.getTime(),
    image: frame.image,
  };
}

/** The frame a message carries (the image as a Buffer over the same bytes). */
export function frameOf(message: FrameMessage): Frame {
  const { image } = message;
  return {
    seq: message.seq,
    capturedAt: new Date(message.capturedAtMs),
    image: Buffer.isBuffer(image)
      ? image
      : Buffer.from(image.buffer, image.byteOffset, image.byteLength),
  };
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null;
}

/** A guard message, or undefined for anything else on the channel. */
export function asGuardMessage(value: unknown): GuardMessage | undefined {
  if (!isObject(value)) return undefined;
  if (
    value.type === 'frame' &&
    Number.isInteger(value.seq) &&
    typeof value.capturedAtMs === 'number' &&
    value.image instanceof Uint8Array
  )
    return value as unknown as FrameMessage;
  if (value.type === 'record' && Array.isArray(value.entries))
    return value as unknown as RecordMessage;
  return undefined;
}

/** A worker message, or undefined for anything else on the channel. */
export function asWorkerMessage(value: unknown): WorkerMessage | undefined {
  if (!isObject(value)) return undefined;
  switch (value.type) {
    case 'ready':
      return Number.isInteger(value.pid) ? (value as unknown as ReadyMessage) : undefined;
    case 'result':
      return isObject(value.result) && Number.isInteger(value.result.seq)
        ? (value as unknown as ResultMessage)
        : undefined;
    case 'status':
      return isObject(value.status) ? (value as unknown as StatusMessage) : undefined;
    case 'recorded':
      return Number.isInteger(value.count) &&
        Number.isInteger(value.skipped) &&
        Array.isArray(value.unrecorded)
        ? (value as unknown as RecordedMessage)
        : undefined;
    default:
      return undefined;
  }
}
