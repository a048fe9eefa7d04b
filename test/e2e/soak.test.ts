// `linesight soak` end to end, briefly: a cloud process and a simulated fleet
// process with a rollout and faults for a fraction of a minute; the report is
// one JSON object with the RSS trend of each process and what was lost.
import { describe, expect, it } from 'vitest';
import { runLinesight } from '../helpers/linesight-process.ts';

interface SoakReport {
  durationSec: number;
  rssGrowthMbPerHour: Record<'cloud' | 'simulator' | 'soak', number>;
  lost: number;
  verdicts: { sent: number; received: number; lost: number; backlog: number };
  memory: Record<string, { firstMb: number; lastMb: number; peakMb: number; samples: number }>;
  rollouts: { started: number; states: Record<string, number> };
  faults: { restarts: number; takeovers: number; failed: number; failures: string[] };
  errors: Record<'cloud' | 'simulator', { warn: number; error: number }>;
}

describe('linesight soak', () => {
  it('runs a small fleet with a rollout and faults and reports memory trends and losses as JSON', async () => {
    const out = await runLinesight([
      'soak',
      '--minutes',
      '0.3',
      '--devices',
      '3',
      '--rollout-every',
      '6',
      '--fault-every',
      '4',
      '--sample-every',
      '2',
      '--json',
    ]);
    const line = out.find((l) => l.startsWith('{') && l.includes('"rssGrowthMbPerHour"'));
    expect(line, out.slice(-20).join('\n')).toBeDefined();
    const report = JSON.parse(line!) as SoakReport;
    for (const p of ['cloud', 'simulator', 'soak'] as const) {
      expect(Number.isFinite(report.rssGrowthMbPerHour[p])).toBe(true);
      expect(report.memory[p]!.samples).toBeGreaterThan(2);
      expect(report.memory[p]!.peakMb).toBeGreaterThan(10);
    }
    expect(report.durationSec).toBeGreaterThanOrEqual(18);
    // The fleet scored frames, every verdict reached the cloud, through restarts and takeovers.
    expect(report.verdicts.sent).toBeGreaterThan(0);
    expect(report.verdicts.received).toBe(report.verdicts.sent);
    expect(report.lost).toBe(0);
    expect(report.rollouts.started).toBeGreaterThanOrEqual(1);
    expect(report.faults.restarts + report.faults.takeovers).toBeGreaterThanOrEqual(2);
    expect(report.faults.failures).toEqual([]);
    expect(report.errors.cloud.error).toBe(0);
  });
});
