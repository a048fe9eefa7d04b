import { MEAN_IMAGE_SIDE, type CameraHealth } from '@linesight/protocol';
import type { FrameImageStats } from './image-stats.ts';

/** Mean grey below which a frame counts as dark (lens cap, lamp off, no signal). */
const DARK_BRIGHTNESS = 8;

/**
 * Camera health over one telemetry window, from the statistics the frame
 * path already computed: a few comparisons and additions per frame.
 */
export class CameraHealthAccumulator {
  #frames = 0;
  #frozen = 0;
  #dark = 0;
  #clippedHigh = 0;
  #clippedLow = 0;
  #gridSum = new Float64Array(MEAN_IMAGE_SIDE * MEAN_IMAGE_SIDE);
  #previous: FrameImageStats | undefined;

  /** Counts one inspected frame. */
  add(stats: FrameImageStats): void {
    this.#frames++;
    if (this.#previous !== undefined && sameFrame(this.#previous, stats)) this.#frozen++;
    this.#previous = stats;
    if (stats.brightness < DARK_BRIGHTNESS) this.#dark++;
    this.#clippedHigh += stats.clippedHigh;
    this.#clippedLow += stats.clippedLow;
    const n = Math.min(this.#gridSum.length, stats.grid.length);
    for (let i = 0; i < n; i++)
      this.#gridSum[i] = (this.#gridSum[i] as number) + (stats.grid[i] as number);
  }

  /** The window's camera health (undefined when no frame was inspected); resets the counts. */
  close(): CameraHealth | undefined {
    const frames = this.#frames;
    const health: CameraHealth | undefined =
      frames === 0
        ? undefined
        : {
            frames,
            frozenFrames: this.#frozen,
            darkFrames: this.#dark,
            clippedHighShare: round4(this.#clippedHigh / frames),
            clippedLowShare: round4(this.#clippedLow / frames),
            meanImage: Array.from(this.#gridSum, (v) => Math.round((v / frames) * 100) / 100),
          };
    this.#frames = 0;
    this.#frozen = 0;
    this.#dark = 0;
    this.#clippedHigh = 0;
    this.#clippedLow = 0;
    this.#gridSum.fill(0);
    // The previous frame stays: a camera frozen across a window boundary is still frozen.
    return health;
  }
}

// Identical frames give identical statistics to the last bit; sensor noise never does.
function sameFrame(a: FrameImageStats, b: FrameImageStats): boolean {
  if (a.brightness !== b.brightness || a.sharpness !== b.sharpness || a.contrast !== b.contrast)
    return false;
  if (a.grid.length !== b.grid.length) return false;
  for (let i = 0; i < a.grid.length; i++) if (a.grid[i] !== b.grid[i]) return false;
  return true;
}

function round4(v: number): number {
  return Math.round(v * 1e4) / 1e4;
}
