// sfc32 (Chris Doty-Humphrey's Small Fast Counting generator) seeded through
// splitmix32: 128 bits of state, passes PractRand far beyond what a frame
// needs, and uses only 32-bit integer ops, so streams are identical on every
// platform Node runs on.

const UINT32 = 0x1_0000_0000;
const FOUR_BYTES_INV_SD = 1 / Math.sqrt((4 * (256 * 256 - 1)) / 12);

/** Reduces any number to the uint32 seed space (truncates, wraps modulo 2^32, NaN -> 0). */
export function toSeed(value: number): number {
  return value >>> 0;
}

// murmur3's finaliser: a bijective avalanche on 32 bits.
function fmix32(value: number): number {
  let h = value >>> 0;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/**
 * Derives an independent child seed from a parent seed and an index by hashing,
 * so item `index` of stream `seed` is reproducible without generating the items before it.
 */
export function deriveSeed(seed: number, index: number): number {
  const a = fmix32(toSeed(seed) ^ 0x9e3779b9);
  const b = fmix32(Math.imul(toSeed(index), 0x9e3779b1) ^ 0x7f4a7c15);
  return fmix32((a + Math.imul(b, 0x2545f491) + 0x6a09e667) >>> 0);
}

/** A small deterministic pseudo-random generator (sfc32); the same seed always yields the same stream. */
export class Prng {
  private a: number;
  private b: number;
  private c: number;
  private d: number;
  private spareNormal: number | undefined;

  constructor(seed: number) {
    // splitmix32 spreads one 32-bit seed over the four state words.
    let s = toSeed(seed);
    const next = (): number => {
      s = (s + 0x9e3779b9) >>> 0;
      return fmix32(s);
    };
    this.a = next();
    this.b = next();
    this.c = next();
    this.d = 1;
    // The first outputs of sfc32 are weakly mixed; discard a few.
    for (let i = 0; i < 12; i += 1) this.nextUint32();
  }

  /** Returns the next uniformly distributed unsigned 32-bit integer. */
  nextUint32(): number {
    const t = (((this.a + this.b) | 0) + this.d) | 0;
    this.d = (this.d + 1) | 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) | 0;
    this.c = (this.c << 21) | (this.c >>> 11);
    this.c = (this.c + t) | 0;
    return t >>> 0;
  }

  /** Returns a float uniformly distributed in [min, max) (default [0, 1)). */
  uniform(min = 0, max = 1): number {
    return min + (max - min) * (this.nextUint32() / UINT32);
  }

  /** Returns a normally distributed float (Box-Muller) with the given mean and standard deviation. */
  normal(mean = 0, sd = 1): number {
    if (this.spareNormal !== undefined) {
      const spare = this.spareNormal;
      this.spareNormal = undefined;
      return mean + sd * spare;
    }
    // 1 - u keeps the logarithm's argument in (0, 1].
    const radius = Math.sqrt(-2 * Math.log(1 - this.uniform()));
    const angle = 2 * Math.PI * this.uniform();
    this.spareNormal = radius * Math.sin(angle);
    return mean + sd * radius * Math.cos(angle);
  }

  /**
   * Returns an approximately normal float (sum of four uniform bytes, so bounded
   * at about 3.5 sd); several times cheaper than `normal`, meant for per-pixel noise.
   */
  fastNormal(mean = 0, sd = 1): number {
    const r = this.nextUint32();
    const sum = (r & 0xff) + ((r >>> 8) & 0xff) + ((r >>> 16) & 0xff) + (r >>> 24);
    // Four bytes: mean 510, variance 4 * (256^2 - 1) / 12.
    return mean + sd * (sum - 510) * FOUR_BYTES_INV_SD;
  }

  /** Returns an integer uniformly distributed in [min, max] (both inclusive). */
  int(min: number, max: number): number {
    const lo = Math.ceil(Math.min(min, max));
    const hi = Math.floor(Math.max(min, max));
    return lo + Math.floor(this.uniform() * (hi - lo + 1));
  }

  /** Returns true with probability `p`. */
  chance(p: number): boolean {
    return this.uniform() < p;
  }

  /** Returns a uniformly chosen element of a non-empty array. */
  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new RangeError('cannot pick from an empty array');
    return items[Math.floor(this.uniform() * items.length)] as T;
  }
}
