import { InvalidArgumentError } from 'commander';
import { describe, expect, it } from 'vitest';
import type { RolloutSummary } from '@linesight/api-client';
import { formatRollout, parseGates, parseWavePercents } from './rollout-command.ts';

describe('rollout create options', () => {
  it('parses cumulative wave percents and refuses values outside (0, 100]', () => {
    expect(parseWavePercents('1, 10,50,100')).toEqual([1, 10, 50, 100]);
    expect(() => parseWavePercents('0,100')).toThrow(InvalidArgumentError);
    expect(() => parseWavePercents('10,abc')).toThrow(/comma-separated percents/);
  });

  it('parses --gate KEY=NUMBER pairs into gate limits', () => {
    expect(parseGates(undefined)).toBeUndefined();
    expect(parseGates(['maxP99LatencyRatio=1.5', 'maxRefusedOrCrashed=1'])).toEqual({
      maxP99LatencyRatio: 1.5,
      maxRefusedOrCrashed: 1,
    });
  });

  it('names the known gates when a key is wrong, and refuses non-numbers', () => {
    expect(() => parseGates(['maxLatency=2'])).toThrow(/maxP99LatencyRatio, maxP50LatencyRatio/);
    expect(() => parseGates(['maxErrorRate'])).toThrow(/KEY=NUMBER/);
    expect(() => parseGates(['maxErrorRate='])).toThrow(/must be a number/);
    expect(() => parseGates(['maxErrorRate=-1'])).toThrow(/at least 0/);
  });
});

describe('formatRollout', () => {
  const counts = { waiting: 0, pending: 0, done: 2, failed: 0, rolled_back: 0 };
  const rollout: RolloutSummary = {
    id: 'r1',
    modelName: 'tile',
    modelVersion: '1.1.0',
    state: 'rolled_back',
    reason: 'wave 1 failed its gates',
    createdAt: '2026-11-23T00:00:00.000Z',
    createdBy: 'admin',
    updatedAt: null,
    deviceIds: ['a', 'b'],
    spec: {
      selector: {},
      waves: [{ percent: 100, soakSec: 60 }],
      gates: {
        maxErrorRate: 0.05,
        maxP99LatencyRatio: 1.5,
        maxP50LatencyRatio: 2,
        minLatencyIncreaseMs: 5,
        maxDefectRateChange: 0.2,
        maxRefusedOrCrashed: 0,
      },
      shadow: null,
      direct: false,
      waveTimeoutSec: 600,
    },
    counts,
    waves: [
      {
        index: 0,
        percent: 100,
        soakSec: 60,
        size: 2,
        state: 'failed',
        startedAt: null,
        soakStartedAt: null,
        finishedAt: null,
        counts,
        gates: [
          {
            gate: 'p99LatencyRatio',
            passed: false,
            value: 3,
            limit: 1.5,
            detail: 'p99 9 ms vs 3 ms',
          },
        ],
      },
    ],
    shadow: null,
    devices: [],
  };

  it('shows the gate limits and each failed gate with its detail', () => {
    const text = formatRollout(rollout);
    expect(text).toMatch(/^rollout r1: tile@1\.1\.0 rolled_back \(wave 1 failed its gates\)/);
    expect(text).toMatch(/gates: maxErrorRate=0\.05 maxP99LatencyRatio=1\.5/);
    expect(text).toMatch(
      /wave 1 \(100%, 2 devices, soak 60s\): failed - p99LatencyRatio: p99 9 ms vs 3 ms/,
    );
  });

  it('leaves the gate line out of a direct rollout', () => {
    const direct = { ...rollout, spec: { ...rollout.spec!, direct: true } };
    expect(formatRollout(direct)).not.toMatch(/gates:/);
  });
});
