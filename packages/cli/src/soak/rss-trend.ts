import { readFile } from 'node:fs/promises';

/** One memory sample of a process. */
export interface RssSample {
  /** Seconds since the soak started. */
  atSec: number;
  rssMb: number;
}

/** Resident memory of a process in MB, from Linux /proc; undefined when it cannot be read (gone, not Linux). */
export async function processRssMb(pid: number): Promise<number | undefined> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => '');
  const kb = /^VmRSS:\s+(\d+) kB/m.exec(status)?.[1];
  return kb === undefined ? undefined : Number(kb) / 1024;
}

/** Least-squares slope of RSS over time, in MB per hour; 0 with fewer than two samples. */
export function rssGrowthMbPerHour(samples: readonly RssSample[]): number {
  const n = samples.length;
  if (n < 2) return 0;
  const meanT = samples.reduce((s, x) => s + x.atSec, 0) / n;
  const meanM = samples.reduce((s, x) => s + x.rssMb, 0) / n;
  let num = 0;
  let den = 0;
  for (const x of samples) {
    num += (x.atSec - meanT) * (x.rssMb - meanM);
    den += (x.atSec - meanT) ** 2;
  }
  return den === 0 ? 0 : (num / den) * 3600;
}

/** A process's memory over a soak: first, last, peak, and the growth trend after the warm-up. */
export function summarizeRss(
  samples: readonly RssSample[],
  warmupSec: number,
): {
  firstMb: number;
  lastMb: number;
  peakMb: number;
  rssGrowthMbPerHour: number;
  samples: number;
} {
  const settled = samples.filter((s) => s.atSec >= warmupSec);
  const round = (x: number) => Math.round(x * 10) / 10;
  return {
    firstMb: round(samples[0]?.rssMb ?? 0),
    lastMb: round(samples.at(-1)?.rssMb ?? 0),
    peakMb: round(Math.max(0, ...samples.map((s) => s.rssMb))),
    rssGrowthMbPerHour: round(rssGrowthMbPerHour(settled.length >= 2 ? settled : samples)),
    samples: samples.length,
  };
}
