/** The last N latency samples, for percentiles in telemetry. */
export class LatencyWindow {
  readonly #samples: number[] = [];
  readonly #capacity: number;
  #next = 0;

  constructor(capacity = 512) {
    this.#capacity = capacity;
  }

  /** Samples held. */
  get size(): number {
    return this.#samples.length;
  }

  /** Adds one sample in milliseconds. */
  add(ms: number): void {
    if (this.#samples.length < this.#capacity) this.#samples.push(ms);
    else this.#samples[this.#next] = ms;
    this.#next = (this.#next + 1) % this.#capacity;
  }

  /** Forgets every sample (e.g. when a new model goes live). */
  reset(): void {
    this.#samples.length = 0;
    this.#next = 0;
  }

  /** p50, p99 and max of the window (zeros when empty). */
  summary(): { p50: number; p99: number; max: number } {
    if (this.#samples.length === 0) return { p50: 0, p99: 0, max: 0 };
    const sorted = [...this.#samples].sort((a, b) => a - b);
    const at = (q: number) =>
      sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] as number;
    return { p50: round(at(0.5)), p99: round(at(0.99)), max: round(sorted.at(-1) as number) };
  }
}

function round(ms: number): number {
  return Math.round(ms * 100) / 100;
}
