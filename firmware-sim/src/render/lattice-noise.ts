import type { Prng } from './prng.ts';

/** Draws one lattice value; the default is uniform in [-1, 1). */
export type LatticeValue = (prng: Prng) => number;

const uniformValue: LatticeValue = (prng) => prng.uniform(-1, 1);

/** A 2-D grid of random values read back with smoothstep-bilinear interpolation (value noise). */
export class LatticeNoise {
  private readonly values: Float32Array;
  private readonly cols: number;
  private readonly rows: number;

  /** Fills a `cols` x `rows` lattice from `prng`; samples outside it clamp to the border. */
  constructor(prng: Prng, cols: number, rows: number, value: LatticeValue = uniformValue) {
    this.cols = Math.max(2, Math.ceil(cols));
    this.rows = Math.max(2, Math.ceil(rows));
    this.values = new Float32Array(this.cols * this.rows);
    for (let i = 0; i < this.values.length; i += 1) this.values[i] = value(prng);
  }

  /** Interpolated value at lattice coordinates (`x` along columns, `y` along rows). */
  sample(x: number, y: number): number {
    const maxX = this.cols - 1;
    const maxY = this.rows - 1;
    const cx = x < 0 ? 0 : x > maxX ? maxX : x;
    const cy = y < 0 ? 0 : y > maxY ? maxY : y;
    let ix = Math.floor(cx);
    let iy = Math.floor(cy);
    if (ix === maxX) ix -= 1;
    if (iy === maxY) iy -= 1;
    const fx = cx - ix;
    const fy = cy - iy;
    const sx = fx * fx * (3 - 2 * fx);
    const sy = fy * fy * (3 - 2 * fy);
    const row = iy * this.cols + ix;
    const v = this.values;
    // Indices are in range by construction; `?? 0` only satisfies noUncheckedIndexedAccess.
    const v00 = v[row] ?? 0;
    const v10 = v[row + 1] ?? 0;
    const v01 = v[row + this.cols] ?? 0;
    const v11 = v[row + this.cols + 1] ?? 0;
    const top = v00 + (v10 - v00) * sx;
    const bottom = v01 + (v11 - v01) * sx;
    return top + (bottom - top) * sy;
  }
}
