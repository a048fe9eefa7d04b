import { DEFAULT_GATES, DEFAULT_SHADOW_MIN_AGREEMENT } from '../rollouts/rollout-types.ts';

/**
 * z of the one-sided lower confidence bound on the held-out agreement: a
 * candidate that agrees with its champion on the line as often as it did on
 * the held-out set falls below the bound by chance in about 2 % of rollouts.
 */
export const AGREEMENT_BOUND_Z = 2;

/** The gate limits a retrained candidate's rollout is started with. */
export interface RetrainRolloutGates {
  /** Least share of shadow frames on which candidate and champion must agree. */
  minAgreement: number;
  /** Largest significant change of the defect rate a wave may show. */
  maxDefectRateChange: number;
}

const round4 = (x: number) => Math.round(x * 10_000) / 10_000;

/**
 * Wilson score lower bound of a share `p` measured on `n` trials at `z`:
 * unlike p - z·sqrt(p(1-p)/n) it stays below p when p is 0 or 1, and in [0, 1].
 */
export function wilsonLowerBound(p: number, n: number, z: number): number {
  if (n <= 0) return 0;
  const z2 = z * z;
  const centre = p + z2 / (2 * n);
  const spread = z * Math.sqrt((p * (1 - p)) / n + z2 / (4 * n * n));
  return Math.max(0, (centre - spread) / (1 + z2 / n));
}

/**
 * Gate limits for the rollout of a candidate that was retrained because its
 * champion is wrong on the line. Disagreement with that champion is the point,
 * so the default shadow limit (0.9) would stop exactly the fix. Instead the
 * limit is what the held-out comparison measured: the share of held-out
 * images on which both models gave the same verdict (each at its own
 * threshold), lowered by its sampling margin (the Wilson lower bound at
 * AGREEMENT_BOUND_Z over the held-out images), never above the default. A
 * candidate that disagrees on the line much more than it did on the labelled
 * images still stops there. The defect-rate gate of the waves after it is
 * widened to match: where verdicts agree on a share `a` of the frames, the
 * defect rate can move by at most 1 - a, so it allows 1 - minAgreement
 * (never below its default). Without a measured agreement the defaults apply.
 */
export function retrainRolloutGates(
  agreement: number | null | undefined,
  images: number,
): RetrainRolloutGates {
  if (agreement === null || agreement === undefined || !(images > 0))
    return {
      minAgreement: DEFAULT_SHADOW_MIN_AGREEMENT,
      maxDefectRateChange: DEFAULT_GATES.maxDefectRateChange,
    };
  const bound = wilsonLowerBound(agreement, images, AGREEMENT_BOUND_Z);
  // Rounded down, so the rounding never makes the limit stricter than the bound.
  const minAgreement = Math.min(DEFAULT_SHADOW_MIN_AGREEMENT, Math.floor(bound * 10_000) / 10_000);
  return {
    minAgreement,
    maxDefectRateChange: Math.max(DEFAULT_GATES.maxDefectRateChange, round4(1 - minAgreement)),
  };
}

/** Share of images on which two models' verdicts (score >= their own threshold) agree; null for none. */
export function verdictAgreement(
  championScores: readonly number[],
  championThreshold: number,
  challengerScores: readonly number[],
  challengerThreshold: number,
): number | null {
  if (championScores.length !== challengerScores.length)
    throw new RangeError(
      `${championScores.length} champion scores but ${challengerScores.length} challenger scores`,
    );
  if (championScores.length === 0) return null;
  let same = 0;
  for (let i = 0; i < championScores.length; i++) {
    const a = (championScores[i] as number) >= championThreshold;
    const b = (challengerScores[i] as number) >= challengerThreshold;
    if (a === b) same++;
  }
  return same / championScores.length;
}
