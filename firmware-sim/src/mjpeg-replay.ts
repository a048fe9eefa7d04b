// Kept free of agent and vision imports: the camera process that runs it must start light.

/** Why the camera did not send the frame of one time slot. */
export type MissedCause =
  /** The reader had not taken the previous frame yet (the write waited): the reader's fault. */
  | 'blocked'
  /** The camera's own process ran late (it was starved of CPU): the camera's fault. */
  | 'late';

/** Options of an {@link MjpegReplay}. */
export interface MjpegReplayOptions {
  /** Encoded JPEG frames, sent in turn and over again. */
  frames: readonly Buffer[];
  fps: number;
  /**
   * Writes one part; returns false when the reader has not taken it yet, and then
   * `drained` resolves once it has.
   */
  write: (part: Buffer) => boolean;
  drained: () => Promise<void>;
  /** A slot whose frame was not sent, with its due time (ms since the epoch). */
  onMissed?: (dueMs: number, cause: MissedCause) => void;
  /** Wall clock, ms (default Date.now); injectable for tests. */
  now?: () => number;
}

/** Counters of an {@link MjpegReplay}. */
export interface MjpegReplayStats {
  sent: number;
  missedBlocked: number;
  missedLate: number;
}

/** Boundary of the multipart stream; the agent's parser follows JPEG structure, not the boundary. */
const BOUNDARY = 'linesightframe';

/**
 * One part of a multipart/x-mixed-replace MJPEG stream, with the capture time in an
 * `X-Timestamp: SECONDS.MICROSECONDS` header as mjpg-streamer sends it.
 */
export function mjpegPart(jpeg: Buffer, capturedAtMs: number): Buffer {
  const seconds = Math.floor(capturedAtMs / 1000);
  const micros = String(Math.round((capturedAtMs - seconds * 1000) * 1000)).padStart(6, '0');
  const head =
    `--${BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: ${jpeg.length}\r\n` +
    `X-Timestamp: ${seconds}.${micros}\r\n\r\n`;
  return Buffer.concat([Buffer.from(head, 'latin1'), jpeg, Buffer.from('\r\n', 'latin1')]);
}

/**
 * A camera that sends pre-rendered frames at a fixed rate as an MJPEG stream, each stamped
 * with the time it was sent. Like a real camera it does not wait for a slow reader: a slot
 * that comes while a write still waits is skipped (`blocked`), and a slot the camera's own
 * process woke too late for is skipped too (`late`); both are reported with their due time,
 * so a starved camera shows as itself and not as a slow reader.
 */
export class MjpegReplay {
  readonly #o: MjpegReplayOptions;
  readonly #now: () => number;
  readonly #periodMs: number;
  #startMs = 0;
  /** The next slot to send. */
  #slot = 0;
  #timer: NodeJS.Timeout | undefined;
  #closed = false;
  // The last write that had to wait for the reader: [start, end) in wall-clock ms.
  #blockedFromMs = Number.POSITIVE_INFINITY;
  #blockedToMs = Number.NEGATIVE_INFINITY;
  readonly #stats: MjpegReplayStats = { sent: 0, missedBlocked: 0, missedLate: 0 };

  constructor(options: MjpegReplayOptions) {
    if (options.frames.length === 0) throw new RangeError('MjpegReplay needs at least one frame');
    if (!(Number.isFinite(options.fps) && options.fps > 0))
      throw new RangeError(`fps must be > 0, got ${options.fps}`);
    this.#o = options;
    this.#now = options.now ?? Date.now;
    this.#periodMs = 1000 / options.fps;
  }

  get stats(): Readonly<MjpegReplayStats> {
    return { ...this.#stats };
  }

  /** Sends the first frame at once, then one a period. */
  start(): void {
    this.#startMs = this.#now();
    this.#tick();
  }

  /** Stops sending; idempotent. */
  close(): void {
    this.#closed = true;
    clearTimeout(this.#timer);
  }

  #tick(): void {
    this.#timer = undefined;
    if (this.#closed) return;
    const nowMs = this.#now();
    const dueSlot = Math.floor((nowMs - this.#startMs) / this.#periodMs);
    if (dueSlot < this.#slot) {
      this.#schedule(nowMs);
      return;
    }
    for (let slot = this.#slot; slot < dueSlot; slot++) {
      const dueMs = this.#startMs + slot * this.#periodMs;
      const cause: MissedCause =
        dueMs >= this.#blockedFromMs && dueMs < this.#blockedToMs ? 'blocked' : 'late';
      if (cause === 'blocked') this.#stats.missedBlocked++;
      else this.#stats.missedLate++;
      this.#o.onMissed?.(dueMs, cause);
    }
    const frame = this.#o.frames[dueSlot % this.#o.frames.length]!;
    this.#slot = dueSlot + 1;
    this.#stats.sent++;
    // A write to a pipe may block until the reader takes it (stdout on Linux is synchronous),
    // or return false and drain later: either way the slots due meanwhile were the reader's.
    this.#blockedFromMs = nowMs;
    if (this.#o.write(mjpegPart(frame, nowMs))) {
      this.#blockedToMs = this.#now();
      this.#schedule(this.#blockedToMs);
      return;
    }
    this.#blockedToMs = Number.POSITIVE_INFINITY;
    void this.#o.drained().then(() => {
      this.#blockedToMs = this.#now();
      this.#schedule(this.#blockedToMs);
    });
  }

  #schedule(nowMs: number): void {
    if (this.#closed) return;
    const nextMs = this.#startMs + this.#slot * this.#periodMs;
    this.#timer = setTimeout(() => this.#tick(), Math.max(0, nextMs - nowMs));
  }
}
