import type { Histogram } from '@linesight/protocol';

/** A histogram over fixed upper bounds; the last bucket counts values above every bound. */
export class FixedHistogram {
  readonly le: readonly number[];
  readonly #counts: number[];

  constructor(le: readonly number[]) {
    this.le = le;
    this.#counts = new Array<number>(le.length + 1).fill(0);
  }

  /** Counts one value (non-finite values are ignored). */
  add(value: number): void {
    if (!Number.isFinite(value)) return;
    let i = 0;
    while (i < this.le.length && value > (this.le[i] as number)) i++;
    this.#counts[i] = (this.#counts[i] ?? 0) + 1;
  }

  /** The counts as a protocol histogram. */
  snapshot(): Histogram {
    return { le: [...this.le], counts: [...this.#counts] };
  }

  /** Forgets every count. */
  reset(): void {
    this.#counts.fill(0);
  }
}

/** `count` bounds from `from` to `to`, evenly spaced. */
export function linearBounds(from: number, to: number, count: number): number[] {
  return Array.from({ length: count }, (_, i) => round(from + ((to - from) * (i + 1)) / count));
}

/** Bounds growing by `factor` from `first` (latency-style). */
export function exponentialBounds(first: number, factor: number, count: number): number[] {
  return Array.from({ length: count }, (_, i) => round(first * factor ** i));
}

function round(v: number): number {
  return Math.round(v * 1e6) / 1e6;
}
