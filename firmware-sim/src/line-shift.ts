import { LinesightError } from '@linesight/protocol';

/**
 * How a simulated line changes from a given frame on: the drift and camera
 * faults the cloud's drift job must tell apart. Every field is optional and
 * they combine.
 */
export interface LineShift {
  /** Frames delivered unchanged before the shift starts (default 0). */
  afterFrames?: number;
  /** Added to every grey level (lighting change), clipped to 0..255. */
  brightness?: number;
  /** Grey-level spread around the frame's mean multiplied by this (a new surface texture). */
  contrast?: number;
  /** Box-blur radius in pixels (a camera out of focus). */
  blurPx?: number;
  /** Deliver the last unshifted frame again and again (a frozen camera). */
  freeze?: boolean;
  /** Share of the frame width, from the left, now showing the dark belt (a moved camera). */
  move?: number;
}

/** Grey level of the belt a moved camera shows. */
const BELT_GREY = 25;

/** Checks a shift; throws ERR_CAMERA listing every problem. */
export function checkLineShift(shift: LineShift): void {
  const problems: string[] = [];
  const after = shift.afterFrames ?? 0;
  if (!(Number.isSafeInteger(after) && after >= 0))
    problems.push('afterFrames must be a non-negative integer');
  if (shift.brightness !== undefined && !(Math.abs(shift.brightness) <= 255))
    problems.push('brightness must be in [-255, 255]');
  if (shift.contrast !== undefined && !(shift.contrast >= 0 && shift.contrast <= 10))
    problems.push('contrast must be in [0, 10]');
  if (shift.blurPx !== undefined && !(Number.isInteger(shift.blurPx) && shift.blurPx >= 0))
    problems.push('blurPx must be a non-negative integer');
  if (shift.move !== undefined && !(shift.move >= 0 && shift.move <= 1))
    problems.push('move must be in [0, 1]');
  if (problems.length > 0)
    throw new LinesightError('ERR_CAMERA', `invalid line shift: ${problems.join('; ')}`, {
      details: { problems },
    });
}

/** Applies the pixel part of a shift (brightness, blur, move) to row-major grey pixels in place. */
export function applyLineShift(
  pixels: Uint8Array,
  width: number,
  height: number,
  shift: LineShift,
): void {
  if (shift.blurPx !== undefined && shift.blurPx > 0) boxBlur(pixels, width, height, shift.blurPx);
  if (shift.contrast !== undefined && shift.contrast !== 1) {
    let sum = 0;
    for (const p of pixels) sum += p;
    const mean = sum / Math.max(1, pixels.length);
    const k = shift.contrast;
    for (let i = 0; i < pixels.length; i++)
      pixels[i] = Math.max(0, Math.min(255, Math.round(mean + ((pixels[i] as number) - mean) * k)));
  }
  if (shift.brightness !== undefined && shift.brightness !== 0) {
    const add = shift.brightness;
    for (let i = 0; i < pixels.length; i++)
      pixels[i] = Math.max(0, Math.min(255, (pixels[i] as number) + add));
  }
  if (shift.move !== undefined && shift.move > 0) {
    const band = Math.round(width * shift.move);
    for (let y = 0; y < height; y++) pixels.fill(BELT_GREY, y * width, y * width + band);
  }
}

// Separable box blur with running sums: O(pixels) whatever the radius.
function boxBlur(pixels: Uint8Array, width: number, height: number, r: number): void {
  const tmp = new Float32Array(pixels.length);
  const pass = (
    read: (i: number) => number,
    write: (i: number, v: number) => void,
    lines: number,
    length: number,
    index: (line: number, k: number) => number,
  ): void => {
    for (let line = 0; line < lines; line++) {
      let sum = 0;
      let count = 0;
      for (let k = 0; k < Math.min(r, length); k++) {
        sum += read(index(line, k));
        count++;
      }
      for (let k = 0; k < length; k++) {
        if (k + r < length) {
          sum += read(index(line, k + r));
          count++;
        }
        if (k - r - 1 >= 0) {
          sum -= read(index(line, k - r - 1));
          count--;
        }
        write(index(line, k), sum / count);
      }
    }
  };
  pass(
    (i) => pixels[i] as number,
    (i, v) => (tmp[i] = v),
    height,
    width,
    (y, x) => y * width + x,
  );
  pass(
    (i) => tmp[i] as number,
    (i, v) => (pixels[i] = Math.round(v)),
    width,
    height,
    (x, y) => y * width + x,
  );
}
