import { describe, expect, it } from 'vitest';
import { rssGrowthMbPerHour, summarizeRss } from './rss-trend.ts';

describe('rssGrowthMbPerHour', () => {
  it('is the least-squares slope in MB per hour', () => {
    // 1 MB a minute (60 MB/h), plus alternating noise whose own slope is -12 MB/h.
    const samples = [0, 60, 120, 180].map((atSec, i) => ({
      atSec,
      rssMb: 100 + atSec / 60 + (i % 2 === 0 ? 0.5 : -0.5),
    }));
    expect(rssGrowthMbPerHour(samples)).toBeCloseTo(48, 6);
    expect(rssGrowthMbPerHour([{ atSec: 0, rssMb: 5 }])).toBe(0);
    expect(rssGrowthMbPerHour([])).toBe(0);
  });

  it('leaves the warm-up out of the trend but not out of first, last and peak', () => {
    const samples = [
      { atSec: 0, rssMb: 100 },
      { atSec: 30, rssMb: 400 },
      { atSec: 60, rssMb: 410 },
      { atSec: 120, rssMb: 410 },
      { atSec: 180, rssMb: 410 },
    ];
    const s = summarizeRss(samples, 60);
    expect(s).toMatchObject({ firstMb: 100, lastMb: 410, peakMb: 410, samples: 5 });
    expect(s.rssGrowthMbPerHour).toBe(0);
  });
});
