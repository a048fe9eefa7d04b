import { PacingSchedule, type Camera, type Frame, type FrameSink } from '@linesight/agent';
import { LinesightError } from '@linesight/protocol';
import { DEFAULT_JPEG_QUALITY, encodeGrey, type ImageFormat } from './encode.ts';
import { frameDefect, frameSeed } from './frame-plan.ts';
import { applyLineShift, checkLineShift, type LineShift } from './line-shift.ts';
import type { DefectKind } from './render/defects.ts';
import { MAX_SURFACE_SIDE_PX, MIN_SURFACE_SIDE_PX, renderSurface } from './render/surface.ts';

/** Options of a synthetic camera; only `seed` is required. */
export interface SyntheticCameraOptions {
  /** Any integer; frame `seq` of a seed is always the same image. */
  seed: number;
  /** Frame width in pixels (default 256). */
  width?: number;
  /** Frame height in pixels (default 256). */
  height?: number;
  /** Frames per second (default 10). */
  fps?: number;
  /** Share of frames that show a defect, 0..1 (default 0.1). */
  defectRate?: number;
  /** Encoding of `Frame.image` (default 'jpeg'). */
  format?: ImageFormat;
  /** JPEG quality 1..100 (default 90). */
  jpegQuality?: number;
  /** Stop after this many frames (default: never). */
  maxFrames?: number;
  /** Lighting change, blur, freeze or a moved view from some frame on (drift tests). */
  shift?: LineShift;
}

type ResolvedOptions = Required<Omit<SyntheticCameraOptions, 'maxFrames' | 'shift'>> & {
  maxFrames: number | undefined;
  shift: LineShift | undefined;
};

/** Highest frame rate the synthetic camera accepts. */
export const MAX_SYNTHETIC_FPS = 1000;

function resolveOptions(options: SyntheticCameraOptions): ResolvedOptions {
  const resolved: ResolvedOptions = {
    seed: options.seed,
    width: options.width ?? 256,
    height: options.height ?? 256,
    fps: options.fps ?? 10,
    defectRate: options.defectRate ?? 0.1,
    format: options.format ?? 'jpeg',
    jpegQuality: options.jpegQuality ?? DEFAULT_JPEG_QUALITY,
    maxFrames: options.maxFrames,
    shift: options.shift,
  };
  if (resolved.shift !== undefined) checkLineShift(resolved.shift);
  const problems: string[] = [];
  if (!Number.isSafeInteger(resolved.seed)) problems.push(`seed must be an integer`);
  for (const key of ['width', 'height'] as const) {
    const side = resolved[key];
    if (!Number.isInteger(side) || side < MIN_SURFACE_SIDE_PX || side > MAX_SURFACE_SIDE_PX) {
      problems.push(
        `${key} must be an integer in [${MIN_SURFACE_SIDE_PX}, ${MAX_SURFACE_SIDE_PX}]`,
      );
    }
  }
  if (!(resolved.fps > 0 && resolved.fps <= MAX_SYNTHETIC_FPS)) {
    problems.push(`fps must be in (0, ${MAX_SYNTHETIC_FPS}]`);
  }
  if (!(resolved.defectRate >= 0 && resolved.defectRate <= 1)) {
    problems.push('defectRate must be in [0, 1]');
  }
  if (resolved.format !== 'jpeg' && resolved.format !== 'png') {
    problems.push(`format must be 'jpeg' or 'png'`);
  }
  const quality = resolved.jpegQuality;
  if (!Number.isInteger(quality) || quality < 1 || quality > 100) {
    problems.push('jpegQuality must be an integer in [1, 100]');
  }
  const max = resolved.maxFrames;
  if (max !== undefined && !(Number.isSafeInteger(max) && max >= 0)) {
    problems.push('maxFrames must be a non-negative integer');
  }
  if (problems.length > 0) {
    throw new LinesightError(
      'ERR_CAMERA',
      `invalid synthetic camera options: ${problems.join('; ')}`,
      {
        details: { problems },
      },
    );
  }
  return resolved;
}

/**
 * A camera that renders synthetic brushed-metal parts, some with defects, at a
 * fixed frame rate; frame `seq` of a seed is always the same image.
 */
export class SyntheticCamera implements Camera {
  /** The defect shown in frame `seq` of a camera with this seed and defect rate (ground truth). */
  static frameDefect(seed: number, seq: number, defectRate: number): DefectKind {
    return frameDefect(seed, seq, defectRate);
  }

  readonly description: string;
  private readonly options: ResolvedOptions;
  private readonly pacing: PacingSchedule;
  private delivered = 0;
  // The last unshifted frame, delivered again while the camera is frozen.
  private lastImage: Buffer | undefined;
  private sink: FrameSink | undefined;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private inFlight: Promise<void> | undefined;
  private closed = false;
  private closing: Promise<void> | undefined;

  /** Validates options (throws ERR_CAMERA listing every problem); does not start capturing. */
  constructor(options: SyntheticCameraOptions) {
    this.options = resolveOptions(options);
    const { seed, width, height, fps } = this.options;
    this.pacing = new PacingSchedule(fps);
    this.description = `synthetic(seed=${seed}, ${width}x${height} @ ${fps} fps${this.options.shift ? `, shift ${JSON.stringify(this.options.shift)}` : ''})`;
  }

  /** Number of frames delivered so far (equals the next seq). */
  get framesDelivered(): number {
    return this.delivered;
  }

  /** The defect shown in this camera's frame `seq` (ground truth). */
  defectOf(seq: number): DefectKind {
    return frameDefect(this.options.seed, seq, this.options.defectRate);
  }

  /** Starts delivering frames to `sink`, the first one at once; rejects if started before or closed. */
  async start(sink: FrameSink): Promise<void> {
    if (this.closed) throw new LinesightError('ERR_CAMERA', 'synthetic camera is closed');
    if (this.sink !== undefined) {
      throw new LinesightError('ERR_CAMERA', 'synthetic camera is already started');
    }
    this.sink = sink;
    this.pacing.anchor(this.delivered, performance.now());
    this.scheduleNext();
  }

  /** Stops the timer and waits for a frame being rendered, which is then dropped; idempotent. */
  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  private async shutdown(): Promise<void> {
    this.closed = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    // capture() never rejects and checks `closed` before delivering.
    await this.inFlight;
  }

  private scheduleNext(): void {
    if (this.closed) return;
    const { maxFrames } = this.options;
    if (maxFrames !== undefined && this.delivered >= maxFrames) return;
    // Frame `delivered` is next: timer lateness does not accumulate, and after a
    // stall or a slow render it comes at once rather than in a burst.
    this.timer = setTimeout(
      () => this.onDue(),
      this.pacing.delayMs(this.delivered, performance.now()),
    );
  }

  private onDue(): void {
    this.timer = undefined;
    const capture = this.capture();
    this.inFlight = capture;
    const settle = (): void => {
      if (this.inFlight === capture) this.inFlight = undefined;
      this.scheduleNext();
    };
    // capture() reports its own failures; the rejection branch is a safety net.
    void capture.then(settle, (cause: unknown) => {
      this.report(new LinesightError('ERR_CAMERA', 'synthetic camera failed', { cause }));
      settle();
    });
  }

  // Renders, encodes and delivers frame `delivered`; reports failures to the
  // sink instead of rejecting.
  private async capture(): Promise<void> {
    const seq = this.delivered;
    const { seed, width, height, defectRate, format, jpegQuality, shift } = this.options;
    const capturedAt = new Date();
    const shifted = shift !== undefined && seq >= (shift.afterFrames ?? 0);
    let image: Buffer;
    try {
      if (shifted && shift.freeze === true && this.lastImage !== undefined) {
        image = this.lastImage;
      } else {
        const surface = renderSurface({
          seed: frameSeed(seed, seq),
          width,
          height,
          defect: frameDefect(seed, seq, defectRate),
        });
        if (shifted) applyLineShift(surface.pixels, width, height, shift);
        image = await encodeGrey(surface.pixels, width, height, format, jpegQuality);
        // A camera frozen from its first frame repeats that one.
        if (!shifted || shift.freeze !== true || this.lastImage === undefined)
          this.lastImage = image;
      }
    } catch (cause) {
      if (!this.closed) {
        this.report(
          new LinesightError('ERR_CAMERA', `synthetic frame ${seq} failed`, {
            cause,
            details: { seq },
          }),
        );
        // Retry the same seq one period from now, not in a tight loop.
        this.pacing.anchor(seq, performance.now() + this.pacing.periodMs);
      }
      return;
    }
    if (this.closed) return;
    this.delivered = seq + 1;
    const frame: Frame = { seq, capturedAt, image };
    try {
      this.sink?.frame(frame);
    } catch (cause) {
      this.report(
        new LinesightError('ERR_CAMERA', `frame sink threw on frame ${seq}`, {
          cause,
          details: { seq },
        }),
      );
    }
  }

  private report(err: LinesightError): void {
    try {
      this.sink?.error(err);
    } catch (sinkErr) {
      // A sink that cannot take an error is a bug in the sink: surface it as an
      // uncaught exception, as an EventEmitter without an 'error' listener would,
      // while the camera itself keeps its state consistent.
      queueMicrotask(() => {
        throw sinkErr;
      });
    }
  }
}
