import { describe, expect, it } from 'vitest';
import type { Telemetry } from '@linesight/protocol';
import {
  binomialTail,
  evaluateShadowGates,
  evaluateWaveGates,
  quantile,
  sampleOf,
  windowStats,
  type TelemetrySample,
  type WindowStats,
} from './gates.ts';
import { DEFAULT_GATES, type GateLimits } from './rollout-types.ts';

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

const gate = (results: ReturnType<typeof evaluateWaveGates>, name: string) => {
  const found = results.find((g) => g.gate === name);
  if (found === undefined) throw new Error(`no ${name} gate in ${JSON.stringify(results)}`);
  return found;
};
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

// The edges of the rollout gates that mutation testing found unheld: each limit is inclusive, a
// falling defect rate fails like a rising one, and devices without frames do not vote on latency.

const limits = (partial: Partial<GateLimits> = {}): GateLimits => ({
  ...DEFAULT_GATES,
  ...partial,
});

describe('sampleOf', () => {
  const telemetry = (partial: Partial<Telemetry>): Telemetry =>
    ({
      model: { name: 'm', version: '1.2.0', sha256: 'a'.repeat(64) },
      frames: { captured: 9, scored: 8, unknown: 1, droppedOverload: 0, defects: 2 },
      errors: 3,
      latencyMs: { p50: 4, p99: 11, max: 12 },
      stageLatencyMs: { inference: { p50: 1, p99: 6, max: 7 } },
      ...partial,
    }) as unknown as Telemetry;

  it('takes the counters, the model and both p99s', () => {
    expect(sampleOf(telemetry({}))).toEqual({
      model: 'm@1.2.0',
      captured: 9,
      scored: 8,
      unknown: 1,
      defects: 2,
      errors: 3,
      p99Ms: 11,
      inferenceP99Ms: 6,
    });
  });

  it('says null without a model or stage latencies', () => {
    const s = sampleOf(telemetry({ model: null, stageLatencyMs: undefined }));
    expect(s.model).toBeNull();
    expect(s.inferenceP99Ms).toBeNull();
    const noInference = sampleOf(telemetry({ stageLatencyMs: {} as Telemetry['stageLatencyMs'] }));
    expect(noInference.inferenceP99Ms).toBeNull();
  });
});

describe('windowStats edges', () => {
  it('leaves devices that scored nothing out of the latency medians', () => {
    const s = windowStats([
      { after: sample({ captured: 5, scored: 5, p99Ms: 10, inferenceP99Ms: 2 }) },
      { after: sample({ captured: 5, scored: 5, p99Ms: 30, inferenceP99Ms: 4 }) },
      // Captured but scored nothing (no model): its latency is not a model's.
      { after: sample({ captured: 5, scored: 0, p99Ms: 900, inferenceP99Ms: 900 }) },
    ]);
    // Even count: the mean of the two middle values.
    expect(s.p99Ms).toBe(20);
    expect(s.inferenceP99Ms).toBe(3);
    expect(s.devices).toBe(3);
  });

  it('leaves devices without stage latencies out of the inference median only', () => {
    const s = windowStats([
      { after: sample({ captured: 5, scored: 5, p99Ms: 10, inferenceP99Ms: null }) },
      { after: sample({ captured: 5, scored: 5, p99Ms: 30, inferenceP99Ms: 7 }) },
      { after: sample({ captured: 5, scored: 5, p99Ms: 50, inferenceP99Ms: null }) },
    ]);
    expect(s.p99Ms).toBe(30);
    expect(s.inferenceP99Ms).toBe(7);
  });

  it('has no latency at all without scored frames', () => {
    const s = windowStats([{ after: sample({ captured: 5 }) }]);
    expect(s.p99Ms).toBeNull();
    expect(s.inferenceP99Ms).toBeNull();
    expect(windowStats([])).toMatchObject({ devices: 0, captured: 0, p99Ms: null });
  });

  it('counts deltas without a restart and never a negative one', () => {
    const s = windowStats([
      {
        before: sample({ captured: 10, scored: 10, unknown: 4, defects: 5, errors: 2 }),
        // Same agent run (captured grew); errors reported lower than before count as none.
        after: sample({ captured: 15, scored: 14, unknown: 5, defects: 6, errors: 1 }),
      },
      {
        before: sample({ captured: 10, scored: 10 }),
        // Same captured count: no restart, nothing new.
        after: sample({ captured: 10, scored: 10 }),
      },
      {
        before: sample({ captured: 10, scored: 10, errors: 1 }),
        after: sample({ captured: 20, scored: 20, errors: 4 }),
      },
    ]);
    expect(s).toMatchObject({ captured: 15, scored: 14, unknown: 1, defects: 1, errors: 3 });
  });
});

describe('quantile', () => {
  it('takes the nearest rank of the sorted values', () => {
    expect(quantile([], 0.5)).toBeNull();
    expect(quantile([5, 1, 3], 0.5)).toBe(3);
    expect(quantile([4, 1, 3, 2], 0.5)).toBe(3);
    expect(quantile([4, 1, 3, 2], 0.99)).toBe(4);
    expect(quantile([4, 1, 3, 2], 1)).toBe(4);
    expect(quantile([4, 1, 3, 2], 0)).toBe(1);
  });
});

describe('binomialTail edges', () => {
  it('is 0 or 1 at the edges of p', () => {
    expect(binomialTail(10, 3, 0)).toBe(0);
    expect(binomialTail(10, 3, 1)).toBe(1);
    expect(binomialTail(10, 10, 0.5)).toBeCloseTo(1 / 1024, 12);
    expect(binomialTail(3, 2, 0.5)).toBeCloseTo(0.5, 12);
    expect(binomialTail(4, 1, 0.5)).toBeCloseTo(15 / 16, 12);
  });
});

describe('evaluateWaveGates edges', () => {
  const base = { refusedOrCrashed: 0, limits: limits(), minFrames: 10 };

  it('allows exactly maxRefusedOrCrashed refused devices and fails one more', () => {
    const at = evaluateWaveGates({
      ...base,
      limits: limits({ maxRefusedOrCrashed: 1 }),
      refusedOrCrashed: 1,
      wave: stats({ devices: 4 }),
      baseline: stats({}),
    });
    expect(gate(at, 'refusedOrCrashed')).toMatchObject({ passed: true, value: 1, limit: 1 });
    expect(gate(at, 'refusedOrCrashed').detail).toBe(
      '1 of 4 wave devices refused or crashed on the version',
    );
    const over = evaluateWaveGates({
      ...base,
      limits: limits({ maxRefusedOrCrashed: 1 }),
      refusedOrCrashed: 2,
      wave: stats({}),
      baseline: stats({}),
    });
    expect(gate(over, 'refusedOrCrashed').passed).toBe(false);
  });

  it('evaluates the telemetry gates from exactly minFrames scored frames on both sides', () => {
    const results = evaluateWaveGates({
      ...base,
      wave: stats({ scored: 10 }),
      baseline: stats({ scored: 10 }),
    });
    expect(gate(results, 'errorRate').value).not.toBeNull();
    expect(gate(results, 'defectRateChange').value).not.toBeNull();
    const thinBaseline = evaluateWaveGates({
      ...base,
      wave: stats({}),
      baseline: stats({ scored: 9 }),
    });
    expect(gate(thinBaseline, 'errorRate')).toMatchObject({ passed: true, value: null });
    expect(gate(thinBaseline, 'defectRateChange').detail).toBe(
      'not evaluated: no baseline devices on the previous version with 10+ scored frames',
    );
    expect(thinBaseline.map((g) => g.gate)).toEqual([
      'refusedOrCrashed',
      'errorRate',
      'p99LatencyRatio',
      'p50LatencyRatio',
      'defectRateChange',
    ]);
  });

  it('allows an error-rate increase of exactly the limit and fails above it', () => {
    const at = evaluateWaveGates({
      ...base,
      limits: limits({ maxErrorRate: 0.25 }),
      wave: stats({ unknown: 20, errors: 5 }),
      baseline: stats({}),
    });
    expect(gate(at, 'errorRate')).toMatchObject({ passed: true, value: 0.25 });
    expect(gate(at, 'errorRate').detail).toBe(
      'errors per frame 0.25 in the wave vs 0 on the previous version',
    );
    const over = evaluateWaveGates({
      ...base,
      limits: limits({ maxErrorRate: 0.25 }),
      wave: stats({ unknown: 20, errors: 6 }),
      baseline: stats({}),
    });
    expect(gate(over, 'errorRate').passed).toBe(false);
    // The increase counts, not the level: a wave as bad as its baseline passes.
    const same = evaluateWaveGates({
      ...base,
      limits: limits({ maxErrorRate: 0.25 }),
      wave: stats({ unknown: 50 }),
      baseline: stats({ unknown: 30, errors: 20 }),
    });
    expect(gate(same, 'errorRate')).toMatchObject({ passed: true, value: 0 });
  });

  it('fails a model that stops flagging defects, not only one that flags too many', () => {
    const results = evaluateWaveGates({
      ...base,
      wave: stats({ captured: 200, scored: 200, defects: 0 }),
      baseline: stats({ captured: 500, scored: 500, defects: 250 }),
    });
    expect(gate(results, 'defectRateChange')).toMatchObject({ passed: false, value: -0.5 });
  });

  it('passes a large defect-rate change that is not significant and a significant small one', () => {
    // 0.3 apart but on 10 frames: z about 1.9.
    const noisy = evaluateWaveGates({
      ...base,
      wave: stats({ scored: 10, defects: 6 }),
      baseline: stats({ scored: 500, defects: 150 }),
    });
    expect(gate(noisy, 'defectRateChange').passed).toBe(true);
    // 0.1 apart on 20,000 frames: significant, but within the limit.
    const small = evaluateWaveGates({
      ...base,
      wave: stats({ captured: 20_000, scored: 20_000, defects: 4000 }),
      baseline: stats({ captured: 20_000, scored: 20_000, defects: 2000 }),
    });
    expect(gate(small, 'defectRateChange')).toMatchObject({ passed: true, value: 0.1 });
    // 0.3 apart on 20 frames each: the standard error adds both sides' variances (z about 2).
    const even = evaluateWaveGates({
      ...base,
      wave: stats({ captured: 20, scored: 20, defects: 10 }),
      baseline: stats({ captured: 20, scored: 20, defects: 4 }),
    });
    expect(gate(even, 'defectRateChange')).toMatchObject({ passed: true, value: 0.3 });
    expect(gate(even, 'defectRateChange').detail).toBe(
      'defect rate 0.5 in the wave (20 frames) vs 0.2 on the previous version (20 frames), z=1.989',
    );
    // The change is exactly the limit: allowed.
    const atLimit = evaluateWaveGates({
      ...base,
      limits: limits({ maxDefectRateChange: 0.5 }),
      wave: stats({ captured: 1000, scored: 1000, defects: 1000 }),
      baseline: stats({ captured: 1000, scored: 1000, defects: 500 }),
    });
    expect(gate(atLimit, 'defectRateChange')).toMatchObject({ passed: true, value: 0.5 });
  });

  it('passes when neither side has defects', () => {
    const results = evaluateWaveGates({
      ...base,
      wave: stats({ defects: 0 }),
      baseline: stats({ defects: 0 }),
    });
    expect(gate(results, 'defectRateChange')).toMatchObject({ passed: true, value: 0 });
    expect(gate(results, 'defectRateChange').detail).toMatch(/z=0$/);
  });

  it('holds the telemetry latency limits inclusive and needs a real increase to fail', () => {
    const run = (wave: number, baseline: number, minLatencyIncreaseMs = 5) =>
      gate(
        evaluateWaveGates({
          ...base,
          limits: limits({ minLatencyIncreaseMs }),
          wave: stats({ inferenceP99Ms: wave }),
          baseline: stats({ inferenceP99Ms: baseline }),
        }),
        'p99LatencyRatio',
      );
    // Exactly twice as slow: allowed.
    expect(run(20, 10)).toMatchObject({ passed: true, value: 2 });
    // Over twice and 5 ms slower (exactly the minimum increase): fails.
    expect(run(7.5, 2.5)).toMatchObject({ passed: false, value: 3 });
    // Over twice but under 5 ms slower: noise.
    expect(run(7.4, 2.5).passed).toBe(true);
    // A baseline under 0.5 ms counts as 0.5 ms.
    expect(run(10, 0)).toMatchObject({ passed: false, value: 20 });
    expect(run(10, 0).detail).toBe(
      'inference p99 10 ms in the wave vs 0 ms on the previous version (telemetry windows)',
    );
  });

  it('uses the end-to-end p99 unless both sides report inference latency', () => {
    const results = evaluateWaveGates({
      ...base,
      wave: stats({ p99Ms: 40, inferenceP99Ms: 5 }),
      baseline: stats({ p99Ms: 10, inferenceP99Ms: null }),
    });
    expect(gate(results, 'p99LatencyRatio')).toMatchObject({ passed: false, value: 4 });
    expect(gate(results, 'p99LatencyRatio').detail).toMatch(/^end-to-end p99 40 ms/);
  });

  it('evaluates sampled latencies from exactly minFrames frames on each side', () => {
    const slow = Array.from({ length: 10 }, () => 40);
    const fast = Array.from({ length: 10 }, () => 2);
    const results = evaluateWaveGates({
      ...base,
      wave: stats({}),
      baseline: stats({}),
      frames: { wave: slow, baseline: fast },
    });
    expect(gate(results, 'p50LatencyRatio')).toMatchObject({ passed: false, value: 20 });
    expect(gate(results, 'p99LatencyRatio')).toMatchObject({ passed: false, value: 20 });
    const thin = evaluateWaveGates({
      ...base,
      wave: stats({}),
      baseline: stats({}),
      frames: { wave: slow, baseline: fast.slice(1) },
    });
    expect(gate(thin, 'p50LatencyRatio')).toMatchObject({ passed: true, value: null });
    expect(gate(thin, 'p99LatencyRatio')).toMatchObject({ passed: true, value: null });
  });

  it('counts only frames slower than the threshold as evidence of a slowdown', () => {
    // Every wave frame is just over the threshold (twice the baseline): all of them count.
    const results = evaluateWaveGates({
      ...base,
      wave: stats({}),
      baseline: stats({}),
      frames: { wave: Array.from({ length: 50 }, () => 20.01), baseline: Array(50).fill(10) },
    });
    const p50 = gate(results, 'p50LatencyRatio');
    expect(p50.value).toBeCloseTo(2.001, 4);
    expect(p50.detail).toMatch(
      /50 wave frames over 20 ms where a p50 within the limit allows about 25 \(p=/,
    );
    expect(p50.passed).toBe(false);
    const onThreshold = evaluateWaveGates({
      ...base,
      limits: limits({ maxP50LatencyRatio: 1.5, maxP99LatencyRatio: 1.5 }),
      wave: stats({}),
      baseline: stats({}),
      frames: { wave: Array(50).fill(15), baseline: Array(50).fill(9) },
    });
    // Threshold max(1.5 * 9, 9 + 5) = 14: every frame is over it.
    expect(gate(onThreshold, 'p50LatencyRatio').detail).toMatch(/50 wave frames over 14 ms/);
    const exactly = evaluateWaveGates({
      ...base,
      limits: limits({ maxP50LatencyRatio: 1.5, maxP99LatencyRatio: 1.5 }),
      wave: stats({}),
      baseline: stats({}),
      frames: { wave: Array(50).fill(14), baseline: Array(50).fill(9) },
    });
    // 14 ms is the threshold itself: no frame is over it, so the ratio alone cannot fail.
    expect(gate(exactly, 'p50LatencyRatio')).toMatchObject({ passed: true });
    expect(gate(exactly, 'p50LatencyRatio').detail).toMatch(/0 wave frames over 14 ms/);
  });
});

describe('evaluateShadowGates edges', () => {
  const spec = { durationSec: 10, minAgreement: 0.9, maxLatencyRatio: 2 };

  it('holds both shadow limits inclusive', () => {
    const at = evaluateShadowGates(
      [{ scored: 10, agreementRate: 0.9, shadowP99Ms: 10, liveInferenceP99Ms: 5 }],
      spec,
    );
    expect(at.map((g) => [g.gate, g.passed, g.value])).toEqual([
      ['shadowAgreement', true, 0.9],
      ['shadowLatencyRatio', true, 2],
    ]);
    const over = evaluateShadowGates(
      [{ scored: 10, agreementRate: 0.89, shadowP99Ms: 10.1, liveInferenceP99Ms: 5 }],
      spec,
    );
    expect(over.map((g) => g.passed)).toEqual([false, false]);
  });

  it('ignores devices without shadow frames or agreement', () => {
    const results = evaluateShadowGates(
      [
        { scored: 20, agreementRate: 1, shadowP99Ms: 4, liveInferenceP99Ms: 4 },
        { scored: 0, agreementRate: 0, shadowP99Ms: 400, liveInferenceP99Ms: 4 },
        { scored: 50, agreementRate: null, shadowP99Ms: 400, liveInferenceP99Ms: 4 },
      ],
      spec,
    );
    expect(results.map((g) => [g.gate, g.passed, g.value])).toEqual([
      ['shadowAgreement', true, 1],
      ['shadowLatencyRatio', true, 1],
    ]);
    expect(results[0]?.detail).toBe(
      'verdicts agree with the live model on 100% of 20 frames on 1 devices',
    );
    const none = evaluateShadowGates(
      [{ scored: 0, agreementRate: 1, shadowP99Ms: 4, liveInferenceP99Ms: 4 }],
      spec,
    );
    expect(none).toEqual([
      {
        gate: 'shadowData',
        passed: false,
        value: 0,
        limit: 1,
        detail: 'no device reported shadow scores for the version (1 devices reporting telemetry)',
      },
    ]);
  });

  it('treats a live inference p99 under 0.5 ms as 0.5 ms', () => {
    const results = evaluateShadowGates(
      [{ scored: 10, agreementRate: 1, shadowP99Ms: 1, liveInferenceP99Ms: 0 }],
      spec,
    );
    expect(results[1]).toMatchObject({ gate: 'shadowLatencyRatio', passed: true, value: 2 });
  });
});
