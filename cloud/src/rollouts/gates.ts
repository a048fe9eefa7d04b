import type { Telemetry } from '@linesight/protocol';
import type { GateLimits, GateResult, ShadowSpec } from './rollout-types.ts';

/** The counters and latencies of one telemetry message that the gates use. */
export interface TelemetrySample {
  model: string | null;
  captured: number;
  scored: number;
  unknown: number;
  defects: number;
  errors: number;
  p99Ms: number;
  inferenceP99Ms: number | null;
}

/** Frames and latency of a group of devices over a time window. */
export interface WindowStats {
  devices: number;
  captured: number;
  scored: number;
  unknown: number;
  defects: number;
  errors: number;
  /** Median over the devices of their p99 latency (robust to one noisy device). */
  p99Ms: number | null;
  inferenceP99Ms: number | null;
}

/** The part of a telemetry message the gates need. */
export function sampleOf(t: Telemetry): TelemetrySample {
  return {
    model: t.model ? `${t.model.name}@${t.model.version}` : null,
    captured: t.frames.captured,
    scored: t.frames.scored,
    unknown: t.frames.unknown,
    defects: t.frames.defects,
    errors: t.errors,
    p99Ms: t.latencyMs.p99,
    inferenceP99Ms: t.stageLatencyMs?.inference?.p99 ?? null,
  };
}

function median(values: number[]): number | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1
    ? (sorted[mid] as number)
    : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

/**
 * Sums counter deltas between two samples per device (an agent restart resets
 * its counters, so a shrinking counter counts from zero) and takes the median
 * of the devices' latest p99 latencies. Without `before` the counters count
 * since the agent started.
 */
export function windowStats(
  pairs: readonly { before?: TelemetrySample | undefined; after: TelemetrySample }[],
): WindowStats {
  const stats: WindowStats = {
    devices: pairs.length,
    captured: 0,
    scored: 0,
    unknown: 0,
    defects: 0,
    errors: 0,
    p99Ms: null,
    inferenceP99Ms: null,
  };
  const p99: number[] = [];
  const inference: number[] = [];
  for (const { before, after } of pairs) {
    const restarted = before === undefined || after.captured < before.captured;
    const delta = (key: 'captured' | 'scored' | 'unknown' | 'defects' | 'errors') =>
      Math.max(0, after[key] - (restarted ? 0 : before[key]));
    stats.captured += delta('captured');
    stats.scored += delta('scored');
    stats.unknown += delta('unknown');
    stats.defects += delta('defects');
    stats.errors += delta('errors');
    if (after.scored > 0) p99.push(after.p99Ms);
    if (after.inferenceP99Ms !== null && after.scored > 0) inference.push(after.inferenceP99Ms);
  }
  stats.p99Ms = median(p99);
  stats.inferenceP99Ms = median(inference);
  return stats;
}

/** Inputs of a wave's gates. */
export interface WaveGateInput {
  wave: WindowStats;
  /** Devices still on the previous version over the same window (null when there are none). */
  baseline: WindowStats | null;
  /** Wave devices that refused the version, crash-looped on it, or never reached it. */
  refusedOrCrashed: number;
  limits: GateLimits;
  /** Fewer scored frames than this in the wave (or baseline) skip the telemetry gates. */
  minFrames: number;
  /**
   * Inference latencies (ms) of sampled frame results: the wave's on the new
   * version during the soak, the baseline's on the previous one. When given,
   * they replace telemetry's rolling windows (which still hold minutes of
   * older frames); too few frames then skip the latency gates.
   */
  frames?: { wave: number[]; baseline: number[] };
}

/** The q-quantile (0..1) of values, nearest rank; null when empty. */
export function quantile(values: readonly number[], q: number): number | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] as number;
}

/** z above which a defect-rate change counts as real rather than sampling noise. */
export const DEFECT_RATE_MIN_Z = 4;

const round = (x: number) => Math.round(x * 10_000) / 10_000;

/**
 * Evaluates a wave's gates. The refused/crashed gate always applies; the
 * telemetry gates apply when both sides have scored at least `minFrames`
 * frames, and otherwise pass with a note (a soak of 0 s skips them on purpose).
 */
export function evaluateWaveGates(input: WaveGateInput): GateResult[] {
  const { wave, baseline, limits, minFrames } = input;
  const results: GateResult[] = [
    {
      gate: 'refusedOrCrashed',
      passed: input.refusedOrCrashed <= limits.maxRefusedOrCrashed,
      value: input.refusedOrCrashed,
      limit: limits.maxRefusedOrCrashed,
      detail: `${input.refusedOrCrashed} of ${wave.devices} wave devices refused or crashed on the version`,
    },
  ];
  const skip = (gate: string, limit: number, why: string): GateResult => ({
    gate,
    passed: true,
    value: null,
    limit,
    detail: `not evaluated: ${why}`,
  });
  const why =
    wave.scored < minFrames
      ? `the wave scored ${wave.scored} frames during the soak (fewer than ${minFrames})`
      : baseline === null || baseline.scored < minFrames
        ? `no baseline devices on the previous version with ${minFrames}+ scored frames`
        : undefined;
  if (why !== undefined || baseline === null) {
    const reason = why ?? 'no baseline';
    results.push(
      skip('errorRate', limits.maxErrorRate, reason),
      skip('p99LatencyRatio', limits.maxP99LatencyRatio, reason),
      skip('p50LatencyRatio', limits.maxP50LatencyRatio, reason),
      skip('defectRateChange', limits.maxDefectRateChange, reason),
    );
    return results;
  }

  const errorRate = (s: WindowStats) => (s.unknown + s.errors) / Math.max(1, s.captured);
  const errorIncrease = errorRate(wave) - errorRate(baseline);
  results.push({
    gate: 'errorRate',
    passed: errorIncrease <= limits.maxErrorRate,
    value: round(errorIncrease),
    limit: limits.maxErrorRate,
    detail: `errors per frame ${round(errorRate(wave))} in the wave vs ${round(errorRate(baseline))} on the previous version`,
  });

  results.push(...latencyGates(input, baseline));

  const p1 = wave.defects / wave.scored;
  const p0 = baseline.defects / baseline.scored;
  const pooled = (wave.defects + baseline.defects) / (wave.scored + baseline.scored);
  const se = Math.sqrt(
    Math.max(1e-12, pooled * (1 - pooled)) * (1 / wave.scored + 1 / baseline.scored),
  );
  const z = Math.abs(p1 - p0) / se;
  const change = p1 - p0;
  results.push({
    gate: 'defectRateChange',
    passed: !(Math.abs(change) > limits.maxDefectRateChange && z >= DEFECT_RATE_MIN_Z),
    value: round(change),
    limit: limits.maxDefectRateChange,
    detail: `defect rate ${round(p1)} in the wave (${wave.scored} frames) vs ${round(p0)} on the previous version (${baseline.scored} frames), z=${round(z)}`,
  });
  return results;
}

/** A latency gate fails only when the wave is both `limit` times and `minIncreaseMs` slower. */
function latencyWithin(ratio: number, limit: number, increaseMs: number, minIncreaseMs: number) {
  return ratio <= limit || increaseMs < minIncreaseMs;
}

/**
 * p-value below which a latency gate's slow frames count as a real slowdown
 * rather than a few stalls on a busy machine (a garbage collection, a freshly
 * loaded worker).
 */
export const LATENCY_MAX_P_VALUE = 0.001;

/** P(X >= k) for X ~ Binomial(n, p), summed in log space so large n stays exact enough. */
export function binomialTail(n: number, k: number, p: number): number {
  if (k <= 0) return 1;
  if (k > n) return 0;
  if (p <= 0) return 0;
  if (p >= 1) return 1;
  let logChoose = 0; // log C(n, 0)
  for (let i = 1; i <= k; i++) logChoose += Math.log(n - i + 1) - Math.log(i);
  let tail = 0;
  for (let i = k; i <= n; i++) {
    tail += Math.exp(logChoose + i * Math.log(p) + (n - i) * Math.log1p(-p));
    logChoose += Math.log(n - i) - Math.log(i + 1);
  }
  return Math.min(1, tail);
}

/**
 * Compares the q-quantile of the wave's sampled inference latencies with the
 * baseline's. The ratio alone is not evidence on a small wave: the p99 of 48
 * frames is their slowest frame, so one stall would roll a good version back.
 * The gate therefore fails only when the ratio is over the limit, the wave is
 * at least `minLatencyIncreaseMs` slower, and the frames slower than that
 * threshold are too many to be chance: were the wave's q-quantile within the
 * limit, at most a (1 - q) share of its frames would exceed it, and the
 * binomial tail of the observed count must fall below LATENCY_MAX_P_VALUE.
 */
function frameLatencyGate(
  name: 'p99' | 'p50',
  q: number,
  limit: number,
  minIncreaseMs: number,
  frames: { wave: number[]; baseline: number[] },
): GateResult {
  const w = quantile(frames.wave, q) ?? 0;
  const b = quantile(frames.baseline, q) ?? 0;
  const ratio = w / Math.max(0.5, b);
  const thresholdMs = Math.max(limit * Math.max(0.5, b), b + minIncreaseMs);
  const slow = frames.wave.filter((ms) => ms > thresholdMs).length;
  const pValue = binomialTail(frames.wave.length, slow, 1 - q);
  const significant = pValue < LATENCY_MAX_P_VALUE;
  return {
    gate: `${name}LatencyRatio`,
    passed: latencyWithin(ratio, limit, w - b, minIncreaseMs) || !significant,
    value: round(ratio),
    limit,
    detail:
      `inference ${name} ${round(w)} ms over ${frames.wave.length} wave frames vs ${round(b)} ms over ${frames.baseline.length} frames on the previous version, during the soak; ` +
      `${slow} wave frames over ${round(thresholdMs)} ms where a ${name} within the limit allows about ${round((1 - q) * frames.wave.length)} (p=${pValue.toPrecision(2)})`,
  };
}

function latencyGates(input: WaveGateInput, baseline: WindowStats): GateResult[] {
  const { wave, limits, minFrames, frames } = input;
  if (
    frames !== undefined &&
    (frames.wave.length < minFrames || frames.baseline.length < minFrames)
  ) {
    const detail = `not evaluated: ${frames.wave.length} wave and ${frames.baseline.length} baseline frames sampled (fewer than ${minFrames})`;
    return [
      {
        gate: 'p99LatencyRatio',
        passed: true,
        value: null,
        limit: limits.maxP99LatencyRatio,
        detail,
      },
      {
        gate: 'p50LatencyRatio',
        passed: true,
        value: null,
        limit: limits.maxP50LatencyRatio,
        detail,
      },
    ];
  }
  if (frames !== undefined) {
    return [
      frameLatencyGate('p99', 0.99, limits.maxP99LatencyRatio, limits.minLatencyIncreaseMs, frames),
      frameLatencyGate('p50', 0.5, limits.maxP50LatencyRatio, limits.minLatencyIncreaseMs, frames),
    ];
  }
  // The model's own latency when both sides report it (camera and queue time are not the model's doing).
  const useInference = wave.inferenceP99Ms !== null && baseline.inferenceP99Ms !== null;
  const waveP99 = (useInference ? wave.inferenceP99Ms : wave.p99Ms) ?? 0;
  const baseP99 = (useInference ? baseline.inferenceP99Ms : baseline.p99Ms) ?? 0;
  const ratio = waveP99 / Math.max(0.5, baseP99);
  return [
    {
      gate: 'p99LatencyRatio',
      passed: latencyWithin(
        ratio,
        limits.maxP99LatencyRatio,
        waveP99 - baseP99,
        limits.minLatencyIncreaseMs,
      ),
      value: round(ratio),
      limit: limits.maxP99LatencyRatio,
      detail: `${useInference ? 'inference' : 'end-to-end'} p99 ${waveP99} ms in the wave vs ${baseP99} ms on the previous version (telemetry windows)`,
    },
  ];
}

/** What one device's telemetry says about its shadow model. */
export interface ShadowSample {
  scored: number;
  agreementRate: number | null;
  shadowP99Ms: number;
  liveInferenceP99Ms: number;
}

/** Evaluates the shadow phase: frame-weighted agreement and median shadow/live latency ratio. */
export function evaluateShadowGates(
  samples: readonly ShadowSample[],
  spec: ShadowSpec,
): GateResult[] {
  const withData = samples.filter((s) => s.scored > 0 && s.agreementRate !== null);
  if (withData.length === 0) {
    return [
      {
        gate: 'shadowData',
        passed: false,
        value: 0,
        limit: 1,
        detail: `no device reported shadow scores for the version (${samples.length} devices reporting telemetry)`,
      },
    ];
  }
  const frames = withData.reduce((n, s) => n + s.scored, 0);
  const agreement =
    withData.reduce((n, s) => n + (s.agreementRate as number) * s.scored, 0) / frames;
  const ratio =
    median(withData.map((s) => s.shadowP99Ms / Math.max(0.5, s.liveInferenceP99Ms))) ?? 0;
  return [
    {
      gate: 'shadowAgreement',
      passed: agreement >= spec.minAgreement,
      value: round(agreement),
      limit: spec.minAgreement,
      detail: `verdicts agree with the live model on ${round(agreement * 100)}% of ${frames} frames on ${withData.length} devices`,
    },
    {
      gate: 'shadowLatencyRatio',
      passed: ratio <= spec.maxLatencyRatio,
      value: round(ratio),
      limit: spec.maxLatencyRatio,
      detail: `median shadow p99 / live inference p99 over ${withData.length} devices`,
    },
  ];
}
