import { LinesightError } from '@linesight/protocol';
import type { Camera, FrameSink } from '@linesight/agent';
import { encodeGrey } from '../encode.ts';
import { frameDefect, frameSeed } from '../frame-plan.ts';
import { renderSurface } from '../render/surface.ts';

/** Options of a frame pool. */
export interface FramePoolOptions {
  seed: number;
  /** Distinct frames rendered (devices cycle through them). */
  count: number;
  width: number;
  height: number;
  /** Share of frames that show a defect, 0..1. */
  defectRate: number;
}

/**
 * Renders `count` synthetic JPEG frames once, for many simulated cameras to
 * replay: rendering every frame of every device would make the simulator,
 * not the code under test, the bottleneck of a large fleet.
 */
export async function renderFramePool(options: FramePoolOptions): Promise<Buffer[]> {
  const frames: Buffer[] = [];
  for (let seq = 0; seq < options.count; seq++) {
    const surface = renderSurface({
      seed: frameSeed(options.seed, seq),
      width: options.width,
      height: options.height,
      defect: frameDefect(options.seed, seq, options.defectRate),
    });
    frames.push(await encodeGrey(surface.pixels, options.width, options.height, 'jpeg', 85));
  }
  return frames;
}

/**
 * A camera that replays a shared pool of encoded frames at a fixed rate,
 * starting at `offset` in the pool; fps 0 makes a camera that never
 * delivers (a device with no line running). It walks the pool with a stride
 * coprime to its size (about 0.618 of it), so any few consecutive frames are
 * a well-mixed sample of the pool rather than one stretch of it: devices of
 * a simulated fleet then see the same mix of defects.
 */
export class FramePoolCamera implements Camera {
  readonly description: string;
  readonly #frames: readonly Buffer[];
  readonly #periodMs: number;
  readonly #offset: number;
  readonly #stride: number;
  #delivered = 0;
  #timer: NodeJS.Timeout | undefined;
  #closed = false;

  constructor(options: { frames: readonly Buffer[]; fps: number; offset?: number }) {
    if (options.fps > 0 && options.frames.length === 0)
      throw new LinesightError('ERR_CAMERA', 'a frame pool camera needs at least one frame');
    this.#frames = options.frames;
    this.#periodMs = options.fps > 0 ? 1000 / options.fps : 0;
    this.#offset = options.offset ?? 0;
    this.#stride = mixingStride(options.frames.length);
    this.description = `frame-pool(${options.frames.length} frames @ ${options.fps} fps)`;
  }

  get framesDelivered(): number {
    return this.#delivered;
  }

  async start(sink: FrameSink): Promise<void> {
    if (this.#closed) throw new LinesightError('ERR_CAMERA', 'frame pool camera is closed');
    if (this.#periodMs === 0) return;
    // A random phase, so a fleet's cameras do not all fire in the same millisecond.
    const first = Math.random() * this.#periodMs;
    this.#timer = setTimeout(() => {
      this.#deliver(sink);
      this.#timer = setInterval(() => this.#deliver(sink), this.#periodMs);
    }, first);
  }

  async close(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#timer);
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  #deliver(sink: FrameSink): void {
    if (this.#closed) return;
    const seq = this.#delivered++;
    const image = this.#frames[(this.#offset + seq * this.#stride) % this.#frames.length] as Buffer;
    sink.frame({ seq, capturedAt: new Date(), image });
  }
}

function gcd(a: number, b: number): number {
  return b === 0 ? a : gcd(b, a % b);
}

/** The smallest step of at least 0.618 n that is coprime to n (so every frame is visited). */
function mixingStride(n: number): number {
  if (n <= 2) return 1;
  let stride = Math.max(1, Math.round(n * 0.618));
  while (gcd(stride, n) !== 1) stride++;
  return stride;
}
