/** Median and p99 of samples (ms), rounded to 0.01. */
export function percentiles(samples: readonly number[]): { median: number; p99: number } {
  if (samples.length === 0) return { median: 0, p99: 0 };
  const sorted = [...samples].sort((a, b) => a - b);
  const at = (q: number) =>
    sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] as number;
  return { median: round(at(0.5)), p99: round(at(0.99)) };
}

/** Rounds to 0.01. */
export function round(n: number): number {
  return Math.round(n * 100) / 100;
}

/** The median of samples, unrounded (the mean of the middle two for an even count; 0 when empty). */
export function median(samples: readonly number[]): number {
  if (samples.length === 0) return 0;
  const sorted = [...samples].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1
    ? (sorted[mid] as number)
    : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}
