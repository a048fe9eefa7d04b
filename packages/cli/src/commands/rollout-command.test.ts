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
    publish: { toPublish: 2, published: 2 },
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

  it('prints empty for a wave without devices and why a gate was not evaluated, never passed', () => {
    const passedWave = rollout.waves[0]!;
    const text = formatRollout({
      ...rollout,
      state: 'completed',
      reason: null,
      waves: [
        {
          ...passedWave,
          state: 'passed',
          gates: [
            {
              gate: 'errorRate',
              passed: true,
              value: null,
              limit: 0.05,
              detail: 'not evaluated: the wave scored 3 frames during the soak (fewer than 10)',
            },
            { gate: 'refusedOrCrashed', passed: true, value: 0, limit: 0, detail: '0 of 2' },
          ],
        },
        { ...passedWave, index: 1, size: 0, state: 'passed', gates: [] },
      ],
    });
    expect(text).toMatch(/wave 1 \(100%, 2 devices, soak 60s\): passed\n/);
    expect(text).toContain(
      '  errorRate not evaluated: the wave scored 3 frames during the soak (fewer than 10)',
    );
    expect(text).not.toMatch(/errorRate passed/);
    expect(text).toContain('  refusedOrCrashed passed (0, limit 0): 0 of 2');
    expect(text).toMatch(/wave 2 \(100%, 0 devices, soak 60s\): empty$/m);
  });

  it('shows one row per device, with why it failed or is late', () => {
    const text = formatRollout({
      ...rollout,
      devices: [
        { id: 'a', wave: 1, state: 'done', running: 'tile@1.1.0', online: true },
        {
          id: 'b',
          wave: 1,
          state: 'failed',
          running: 'tile@1.0.0',
          online: true,
          error: 'ERR_AGENT_MODEL_VERIFY: bad hash',
        },
        {
          id: 'c',
          wave: 2,
          state: 'pending',
          running: null,
          online: false,
          late: 'offline since 2026-11-23T00:00:00.000Z',
        },
      ],
    });
    expect(text).toContain('\na  1  done  tile@1.1.0  online\n');
    expect(text).toContain('\nb  1  failed  tile@1.0.0  online  ERR_AGENT_MODEL_VERIFY: bad hash');
    expect(text).toContain(
      '\nc  2  pending  -  offline  late: offline since 2026-11-23T00:00:00.000Z',
    );
    expect(text).toContain('deadline: 600 s per phase, then fail');
  });
});
