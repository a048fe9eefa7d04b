import { describe, expect, it } from 'vitest';
import {
  binomialTail,
  evaluateShadowGates,
  evaluateWaveGates,
  windowStats,
  type TelemetrySample,
  type WindowStats,
} from './gates.ts';
import { DEFAULT_GATES } from './rollout-types.ts';

function stats(partial: Partial<WindowStats>): WindowStats {
  return {
    devices: 1,
    captured: 100,
    scored: 100,
    unknown: 0,
    defects: 10,
    errors: 0,
    p99Ms: 20,
    inferenceP99Ms: 5,
    ...partial,
  };
}

function sample(partial: Partial<TelemetrySample>): TelemetrySample {
  return {
    model: 'm@1.0.0',
    captured: 0,
    scored: 0,
    unknown: 0,
    defects: 0,
    errors: 0,
    p99Ms: 10,
    inferenceP99Ms: 4,
    ...partial,
  };
}

const gate = (results: ReturnType<typeof evaluateWaveGates>, name: string) =>
  results.find((g) => g.gate === name)!;
const base = { refusedOrCrashed: 0, limits: DEFAULT_GATES, minFrames: 10 };

describe('windowStats', () => {
  it('sums counter deltas and takes the median p99 over devices', () => {
    const s = windowStats([
      {
        before: sample({ captured: 10, scored: 10, defects: 1 }),
        after: sample({ captured: 30, scored: 29, unknown: 1, defects: 3, p99Ms: 10 }),
      },
      {
        before: sample({ captured: 5, scored: 5 }),
        after: sample({ captured: 25, scored: 25, defects: 10, p99Ms: 30 }),
      },
      { after: sample({ captured: 4, scored: 4, p99Ms: 50 }) },
    ]);
    expect(s).toMatchObject({ devices: 3, captured: 44, scored: 43, unknown: 1, defects: 12 });
    expect(s.p99Ms).toBe(30);
  });
  it('counts from zero after an agent restart reset its counters', () => {
    const s = windowStats([
      { before: sample({ captured: 100, scored: 100 }), after: sample({ captured: 7, scored: 7 }) },
    ]);
    expect(s.captured).toBe(7);
  });
});

describe('evaluateWaveGates', () => {
  it('passes a wave that looks like the baseline', () => {
    const results = evaluateWaveGates({
      ...base,
      wave: stats({}),
      baseline: stats({ devices: 10 }),
    });
    expect(results.every((g) => g.passed)).toBe(true);
    expect(results.map((g) => g.gate)).toEqual([
      'refusedOrCrashed',
      'errorRate',
      'p99LatencyRatio',
      'defectRateChange',
    ]);
  });
  it('fails a model that flags every frame as a defect, even on a small wave', () => {
    const results = evaluateWaveGates({
      ...base,
      wave: stats({ captured: 12, scored: 12, defects: 12 }),
      baseline: stats({ captured: 500, scored: 500, defects: 150 }),
    });
    expect(gate(results, 'defectRateChange')).toMatchObject({ passed: false, value: 0.7 });
  });
  it('does not fail a small wave on defect-rate noise', () => {
    const results = evaluateWaveGates({
      ...base,
      wave: stats({ captured: 10, scored: 10, defects: 6 }),
      baseline: stats({ captured: 500, scored: 500, defects: 150 }),
    });
    expect(gate(results, 'defectRateChange').passed).toBe(true);
  });
  it('fails a 5x slower model on the inference p99 ratio', () => {
    const results = evaluateWaveGates({
      ...base,
      wave: stats({ inferenceP99Ms: 25, p99Ms: 60 }),
      baseline: stats({ inferenceP99Ms: 5, p99Ms: 40 }),
    });
    expect(gate(results, 'p99LatencyRatio')).toMatchObject({ passed: false, value: 5 });
  });
  it('uses end-to-end p99 when a side lacks stage latencies', () => {
    const results = evaluateWaveGates({
      ...base,
      wave: stats({ inferenceP99Ms: null, p99Ms: 30 }),
      baseline: stats({ p99Ms: 20 }),
    });
    expect(gate(results, 'p99LatencyRatio')).toMatchObject({ passed: true, value: 1.5 });
  });
  it('fails a rising error rate (unknown verdicts and errors per frame)', () => {
    const results = evaluateWaveGates({
      ...base,
      wave: stats({ unknown: 5, errors: 5 }),
      baseline: stats({}),
    });
    expect(gate(results, 'errorRate')).toMatchObject({ passed: false, value: 0.1 });
  });
  it('fails on refused or crashed devices, whatever the telemetry says', () => {
    const results = evaluateWaveGates({
      ...base,
      refusedOrCrashed: 1,
      wave: stats({ scored: 0, captured: 0 }),
      baseline: null,
    });
    expect(gate(results, 'refusedOrCrashed').passed).toBe(false);
  });
  it('skips the telemetry gates without enough frames, saying why', () => {
    const results = evaluateWaveGates({ ...base, wave: stats({ scored: 3 }), baseline: stats({}) });
    expect(results.every((g) => g.passed)).toBe(true);
    expect(gate(results, 'errorRate').detail).toMatch(/scored 3 frames/);
    const none = evaluateWaveGates({ ...base, wave: stats({}), baseline: null });
    expect(gate(none, 'p99LatencyRatio').detail).toMatch(/no baseline/);
  });
});

describe('evaluateShadowGates', () => {
  const spec = { durationSec: 10, minAgreement: 0.9, maxLatencyRatio: 2 };
  it('weights agreement by frames and takes the median latency ratio', () => {
    const results = evaluateShadowGates(
      [
        { scored: 90, agreementRate: 1, shadowP99Ms: 5, liveInferenceP99Ms: 5 },
        { scored: 10, agreementRate: 0.5, shadowP99Ms: 50, liveInferenceP99Ms: 5 },
        { scored: 50, agreementRate: 0.9, shadowP99Ms: 6, liveInferenceP99Ms: 5 },
      ],
      spec,
    );
    expect(results.find((g) => g.gate === 'shadowAgreement')).toMatchObject({
      passed: true,
      value: 0.9333,
    });
    expect(results.find((g) => g.gate === 'shadowLatencyRatio')).toMatchObject({
      passed: true,
      value: 1.2,
    });
  });
  it('fails without shadow data and on low agreement', () => {
    expect(evaluateShadowGates([], spec)[0]).toMatchObject({ gate: 'shadowData', passed: false });
    const low = evaluateShadowGates(
      [{ scored: 100, agreementRate: 0.3, shadowP99Ms: 5, liveInferenceP99Ms: 5 }],
      spec,
    );
    expect(low.find((g) => g.gate === 'shadowAgreement')?.passed).toBe(false);
  });
});

describe('binomialTail', () => {
  it('matches exact binomial tails', () => {
    expect(binomialTail(12, 12, 0.5)).toBeCloseTo(1 / 4096, 10);
    expect(binomialTail(48, 1, 0.01)).toBeCloseTo(1 - 0.99 ** 48, 10);
    expect(binomialTail(10, 0, 0.3)).toBe(1);
    expect(binomialTail(10, 11, 0.3)).toBe(0);
    expect(binomialTail(5000, 50, 0.01)).toBeGreaterThan(0.4);
    expect(binomialTail(5000, 50, 0.01)).toBeLessThan(0.6);
  });
});

describe('evaluateWaveGates with frames sampled during the soak', () => {
  const frames = (n: number, ms: number) => Array.from({ length: n }, (_, i) => ms + (i % 3));
  it('prefers per-frame latencies and checks p50 as well as p99', () => {
    const results = evaluateWaveGates({
      ...base,
      wave: stats({}),
      baseline: stats({}),
      // Baseline p99 is noise (two 200 ms stalls); the wave is slower on every frame.
      frames: { wave: frames(12, 10), baseline: [...frames(100, 2), 200, 200] },
    });
    expect(gate(results, 'p99LatencyRatio').passed).toBe(true);
    expect(gate(results, 'p50LatencyRatio')).toMatchObject({ passed: false, value: 3.6667 });
    expect(gate(results, 'p50LatencyRatio').detail).toMatch(/12 wave frames/);
  });
  it('passes a ratio over the limit when the wave is only a few milliseconds slower', () => {
    const results = evaluateWaveGates({
      ...base,
      wave: stats({}),
      baseline: stats({}),
      // 2.3x slower but only 4 ms: a freshly loaded worker on a busy machine.
      frames: { wave: frames(60, 6), baseline: frames(100, 2) },
    });
    expect(gate(results, 'p50LatencyRatio')).toMatchObject({ passed: true, value: 2.3333 });
    const strict = evaluateWaveGates({
      ...base,
      limits: { ...DEFAULT_GATES, minLatencyIncreaseMs: 0 },
      wave: stats({}),
      baseline: stats({}),
      frames: { wave: frames(60, 7), baseline: frames(100, 2) },
    });
    expect(gate(strict, 'p50LatencyRatio').passed).toBe(false);
  });
  it('does not fail a good version on one stall in a small wave', () => {
    // The CI run that rolled a good version back: the p99 of 48 frames is their slowest one.
    const wave = [...frames(47, 2), 14.7];
    const baseline = [...frames(247, 2), 6.3, 6.3, 6.3];
    const results = evaluateWaveGates({
      ...base,
      wave: stats({}),
      baseline: stats({}),
      frames: { wave, baseline },
    });
    expect(gate(results, 'p99LatencyRatio')).toMatchObject({ passed: true, value: 2.3333 });
    expect(gate(results, 'p99LatencyRatio').detail).toMatch(/1 wave frames over 12\.6 ms/);
  });
  it('fails p99 when a real share of the wave stalls', () => {
    // Every tenth frame takes 40 ms: the median is unchanged, the tail is not.
    const wave = Array.from({ length: 60 }, (_, i) => (i % 10 === 0 ? 40 : 2 + (i % 3)));
    const results = evaluateWaveGates({
      ...base,
      wave: stats({}),
      baseline: stats({}),
      frames: { wave, baseline: frames(300, 2) },
    });
    expect(gate(results, 'p50LatencyRatio').passed).toBe(true);
    expect(gate(results, 'p99LatencyRatio')).toMatchObject({ passed: false, value: 10 });
    expect(gate(results, 'p99LatencyRatio').detail).toMatch(/6 wave frames over/);
  });
  it('skips the latency gates without enough sampled frames', () => {
    const results = evaluateWaveGates({
      ...base,
      wave: stats({}),
      baseline: stats({}),
      frames: { wave: frames(3, 10), baseline: frames(100, 2) },
    });
    expect(gate(results, 'p99LatencyRatio')).toMatchObject({ passed: true, value: null });
    expect(gate(results, 'p50LatencyRatio').detail).toMatch(/3 wave and 100 baseline frames/);
  });
});
