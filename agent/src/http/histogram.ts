/** Default latency buckets in ms: fine below a frame time, coarse above. */
export const LATENCY_BUCKETS_MS = [
  0.5, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000,
] as const;

/** A cumulative (Prometheus-style) histogram of milliseconds with fixed buckets. */
export class Histogram {
  readonly bucketsMs: readonly number[];
  /** Observations at or below each bucket's bound (not yet cumulative). */
  readonly #counts: number[];
  count = 0;
  sumMs = 0;

  constructor(bucketsMs: readonly number[] = LATENCY_BUCKETS_MS) {
    this.bucketsMs = bucketsMs;
    this.#counts = bucketsMs.map(() => 0);
  }

  /** Adds one observation in ms. */
  observe(ms: number): void {
    this.count++;
    this.sumMs += ms;
    const index = this.bucketsMs.findIndex((bound) => ms <= bound);
    if (index >= 0) this.#counts[index] = (this.#counts[index] ?? 0) + 1;
  }

  /** Cumulative counts per bucket bound (the `le` series), without +Inf. */
  cumulative(): { le: number; count: number }[] {
    let running = 0;
    return this.bucketsMs.map((le, i) => {
      running += this.#counts[i] ?? 0;
      return { le, count: running };
    });
  }
}
