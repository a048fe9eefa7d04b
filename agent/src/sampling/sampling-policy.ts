import type { SampleClass, SamplingPolicy } from '@linesight/protocol';

/** A sampling policy with every field set. */
export interface ResolvedSamplingPolicy {
  defects: boolean;
  /** Frames with |score - threshold| <= uncertaintyBand * |threshold| are uncertain. */
  uncertaintyBand: number;
  randomShare: number;
  capsPerHour: Record<SampleClass, number>;
  jpegQuality: number;
  maxSide: number;
  anomalyMap: boolean;
}

/** What a device samples when the cloud says nothing. */
export const DEFAULT_SAMPLING_POLICY: ResolvedSamplingPolicy = {
  defects: true,
  uncertaintyBand: 0.1,
  randomShare: 0.01,
  capsPerHour: { defect: 120, uncertain: 60, random: 30, unknown: 60 },
  jpegQuality: 80,
  maxSide: 512,
  anomalyMap: true,
};

/** Fills a (partial) policy from the cloud with the defaults. */
export function resolveSamplingPolicy(policy: SamplingPolicy | undefined): ResolvedSamplingPolicy {
  const d = DEFAULT_SAMPLING_POLICY;
  return {
    defects: policy?.defects ?? d.defects,
    uncertaintyBand: policy?.uncertaintyBand ?? d.uncertaintyBand,
    randomShare: policy?.randomShare ?? d.randomShare,
    capsPerHour: { ...d.capsPerHour, ...dropUndefined(policy?.capsPerHour ?? {}) },
    jpegQuality: policy?.jpegQuality ?? d.jpegQuality,
    maxSide: policy?.maxSide ?? d.maxSide,
    anomalyMap: policy?.anomalyMap ?? d.anomalyMap,
  };
}

/**
 * Which class a frame would be sampled as, before caps: every defect (if
 * enabled), every unknown, frames near the threshold, then a random share.
 */
export function classifyForSampling(
  policy: ResolvedSamplingPolicy,
  frame: { verdict: 'good' | 'defect' | 'unknown'; score: number | null; threshold: number | null },
  random: number,
): SampleClass | undefined {
  if (frame.verdict === 'unknown') return 'unknown';
  if (frame.verdict === 'defect' && policy.defects) return 'defect';
  if (frame.score !== null && frame.threshold !== null) {
    const band = policy.uncertaintyBand * Math.max(Math.abs(frame.threshold), 1e-9);
    if (Math.abs(frame.score - frame.threshold) <= band) return 'uncertain';
  }
  return random < policy.randomShare ? 'random' : undefined;
}

function dropUndefined<T extends object>(o: T): { [K in keyof T]-?: Exclude<T[K], undefined> } {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as {
    [K in keyof T]-?: Exclude<T[K], undefined>;
  };
}
