/**
 * Drift statistics on binned histograms with fixed, shared bin edges: pure
 * functions, no I/O. Counts are frames per bin; two histograms compared here
 * must have the same bins (the caller checks the bounds).
 */

/** Result of a two-sample comparison of binned histograms. */
export interface BinnedComparison {
  /** The statistic (PSI or KS D). */
  value: number;
  /** Approximate p-value of "both samples come from one distribution". */
  pValue: number;
}

/** Pseudo-count added to every bin before PSI takes logarithms (Jeffreys prior). */
const PSI_PSEUDO_COUNT = 0.5;

function total(counts: readonly number[]): number {
  let n = 0;
  for (const c of counts) n += c;
  return n;
}

/** Frames behind both samples: 1 / (1/n1 + 1/n2), the n of a two-sample test. */
export function effectiveFrames(n1: number, n2: number): number {
  return n1 > 0 && n2 > 0 ? (n1 * n2) / (n1 + n2) : 0;
}

/**
 * Population Stability Index, sum over bins of (a - e) ln(a / e), with a
 * pseudo-count of 0.5 per bin so empty bins stay finite. The p-value reads
 * n_eff * PSI as chi-square with (occupied bins - 1) degrees of freedom: PSI
 * is the symmetric Kullback-Leibler divergence, which n_eff scales into the
 * two-sample chi-square statistic for small differences. It tells a real
 * shift from the noise a small sample alone puts into PSI.
 */
export function psi(reference: readonly number[], actual: readonly number[]): BinnedComparison {
  checkSameBins(reference, actual);
  const nRef = total(reference);
  const nAct = total(actual);
  if (nRef === 0 || nAct === 0) return { value: 0, pValue: 1 };
  const bins = reference.length;
  let value = 0;
  let occupied = 0;
  for (let i = 0; i < bins; i++) {
    const r = reference[i] as number;
    const a = actual[i] as number;
    if (r === 0 && a === 0) continue;
    occupied++;
    const e = (r + PSI_PSEUDO_COUNT) / (nRef + PSI_PSEUDO_COUNT * bins);
    const o = (a + PSI_PSEUDO_COUNT) / (nAct + PSI_PSEUDO_COUNT * bins);
    value += (o - e) * Math.log(o / e);
  }
  const df = Math.max(1, occupied - 1);
  return { value, pValue: chiSquareSurvival(effectiveFrames(nRef, nAct) * value, df) };
}

/**
 * Kolmogorov-Smirnov D on binned data: the largest gap between the two
 * cumulative shares at a bin edge (binning can only hide gaps, so D is a
 * lower bound of the unbinned statistic and its p-value conservative).
 */
export function ks(reference: readonly number[], actual: readonly number[]): BinnedComparison {
  checkSameBins(reference, actual);
  const nRef = total(reference);
  const nAct = total(actual);
  if (nRef === 0 || nAct === 0) return { value: 0, pValue: 1 };
  let cr = 0;
  let ca = 0;
  let d = 0;
  for (let i = 0; i < reference.length; i++) {
    cr += (reference[i] as number) / nRef;
    ca += (actual[i] as number) / nAct;
    d = Math.max(d, Math.abs(cr - ca));
  }
  const n = effectiveFrames(nRef, nAct);
  const sqrtN = Math.sqrt(n);
  return { value: d, pValue: kolmogorovSurvival((sqrtN + 0.12 + 0.11 / sqrtN) * d) };
}

/** Result of a binomial test of an observed rate against an expected one. */
export interface BinomialTest {
  observedRate: number;
  expectedRate: number;
  /** observed - expected. */
  shift: number;
  /** Two-sided p-value. */
  pValue: number;
}

/**
 * Two-sided binomial test of `k` events in `n` trials against rate `p0`:
 * exact (sum of the outcomes no likelier than k) for small n, the normal
 * approximation with continuity correction once n p0 (1 - p0) >= 25.
 */
export function binomialTest(k: number, n: number, p0: number): BinomialTest {
  if (!(n > 0)) return { observedRate: 0, expectedRate: p0, shift: 0, pValue: 1 };
  const observedRate = k / n;
  const shift = observedRate - p0;
  let pValue: number;
  if (p0 <= 0) pValue = k === 0 ? 1 : 0;
  else if (p0 >= 1) pValue = k === n ? 1 : 0;
  else if (n * p0 * (1 - p0) >= 25) {
    const sd = Math.sqrt(n * p0 * (1 - p0));
    const z = Math.max(0, Math.abs(k - n * p0) - 0.5) / sd;
    pValue = Math.min(1, 2 * normalSurvival(z));
  } else {
    const logPmf = (i: number): number =>
      logChoose(n, i) + i * Math.log(p0) + (n - i) * Math.log1p(-p0);
    const observed = logPmf(k);
    let sum = 0;
    for (let i = 0; i <= n; i++) {
      const l = logPmf(i);
      // Relative tolerance as R's binom.test, so ties of the observed outcome count.
      if (l <= observed + 1e-7) sum += Math.exp(l);
    }
    pValue = Math.min(1, sum);
  }
  return { observedRate, expectedRate: p0, shift, pValue };
}

/**
 * Two-sided test of a rate observed as `k` of `n` against an expected rate
 * that was itself measured on `nRef` frames: the exact binomial test when
 * the reference is large (its own error is then negligible), else the pooled
 * two-proportion z-test, so a rate estimated from a few validation images is
 * not taken as exact.
 */
export function rateShiftTest(
  k: number,
  n: number,
  expectedRate: number,
  nRef: number,
): BinomialTest {
  if (!(nRef > 0) || nRef >= 50 * n) return binomialTest(k, n, expectedRate);
  if (!(n > 0)) return { observedRate: 0, expectedRate, shift: 0, pValue: 1 };
  const observedRate = k / n;
  const pooled = (k + expectedRate * nRef) / (n + nRef);
  const se = Math.sqrt(pooled * (1 - pooled) * (1 / n + 1 / nRef));
  const shift = observedRate - expectedRate;
  const pValue =
    se > 0 ? Math.min(1, 2 * normalSurvival(Math.abs(shift) / se)) : shift === 0 ? 1 : 0;
  return { observedRate, expectedRate, shift, pValue };
}

/** Median of a binned sample, interpolated inside its bin (values <= le[i] in bin i). */
export function binnedMedian(le: readonly number[], counts: readonly number[]): number | undefined {
  const n = total(counts);
  if (n === 0 || le.length === 0) return undefined;
  let cumulative = 0;
  for (let i = 0; i < counts.length; i++) {
    const c = counts[i] as number;
    if (c > 0 && cumulative + c >= n / 2) {
      const upper = le[Math.min(i, le.length - 1)] as number;
      const lower = i === 0 ? 0 : (le[i - 1] as number);
      if (i >= le.length) return upper; // overflow bin: its lower bound
      return lower + ((n / 2 - cumulative) / c) * (upper - lower);
    }
    cumulative += c;
  }
  return le[le.length - 1];
}

/** Adds histograms with equal bounds (counts summed bin by bin). */
export function addCounts(into: number[], counts: readonly number[]): void {
  for (let i = 0; i < into.length; i++) into[i] = (into[i] as number) + (counts[i] ?? 0);
}

/** Whether two bound lists are the same (to 1e-9, edges are rounded to 6 decimals). */
export function sameBounds(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((v, i) => Math.abs(v - (b[i] as number)) <= 1e-9);
}

function checkSameBins(a: readonly number[], b: readonly number[]): void {
  if (a.length !== b.length)
    throw new RangeError(`histograms have ${a.length} and ${b.length} bins`);
}

/** P(X > x) for X chi-square with `df` degrees of freedom. */
export function chiSquareSurvival(x: number, df: number): number {
  if (!(x > 0)) return 1;
  return regularizedGammaQ(df / 2, x / 2);
}

/** P(Z > z) for a standard normal Z. */
export function normalSurvival(z: number): number {
  return 0.5 * erfc(z / Math.SQRT2);
}

/** The Kolmogorov distribution's survival function Q(lambda). */
export function kolmogorovSurvival(lambda: number): number {
  if (lambda < 0.2) return 1;
  let sum = 0;
  for (let j = 1; j <= 100; j++) {
    const term = 2 * (j % 2 === 1 ? 1 : -1) * Math.exp(-2 * j * j * lambda * lambda);
    sum += term;
    if (Math.abs(term) < 1e-12) break;
  }
  return Math.min(1, Math.max(0, sum));
}

// Lanczos approximation (g = 7, n = 9), accurate to ~1e-15 for x > 0.
const LANCZOS = [
  0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313,
  -176.61502916214059, 12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6,
  1.5056327351493116e-7,
];

/** ln Gamma(x) for x > 0. */
export function logGamma(x: number): number {
  if (x < 0.5) return Math.log(Math.PI / Math.sin(Math.PI * x)) - logGamma(1 - x);
  const z = x - 1;
  let a = LANCZOS[0] as number;
  const t = z + 7.5;
  for (let i = 1; i < 9; i++) a += (LANCZOS[i] as number) / (z + i);
  return 0.5 * Math.log(2 * Math.PI) + (z + 0.5) * Math.log(t) - t + Math.log(a);
}

function logChoose(n: number, k: number): number {
  return logGamma(n + 1) - logGamma(k + 1) - logGamma(n - k + 1);
}

/** Q(a, x) = Gamma(a, x) / Gamma(a): series below a + 1, continued fraction above. */
function regularizedGammaQ(a: number, x: number): number {
  if (x < a + 1) {
    let sum = 1 / a;
    let term = sum;
    for (let n = 1; n < 1000; n++) {
      term *= x / (a + n);
      sum += term;
      if (Math.abs(term) < Math.abs(sum) * 1e-15) break;
    }
    return Math.max(0, 1 - sum * Math.exp(-x + a * Math.log(x) - logGamma(a)));
  }
  // Lentz's continued fraction.
  const tiny = 1e-300;
  let b = x + 1 - a;
  let c = 1 / tiny;
  let d = 1 / b;
  let h = d;
  for (let i = 1; i < 1000; i++) {
    const an = -i * (i - a);
    b += 2;
    d = an * d + b;
    if (Math.abs(d) < tiny) d = tiny;
    c = b + an / c;
    if (Math.abs(c) < tiny) c = tiny;
    d = 1 / d;
    const delta = d * c;
    h *= delta;
    if (Math.abs(delta - 1) < 1e-15) break;
  }
  return Math.min(1, Math.exp(-x + a * Math.log(x) - logGamma(a)) * h);
}

/** Complementary error function (Numerical Recipes erfcc, relative error < 1.2e-7). */
function erfc(x: number): number {
  const z = Math.abs(x);
  const t = 1 / (1 + 0.5 * z);
  const r =
    t *
    Math.exp(
      -z * z -
        1.26551223 +
        t *
          (1.00002368 +
            t *
              (0.37409196 +
                t *
                  (0.09678418 +
                    t *
                      (-0.18628806 +
                        t *
                          (0.27886807 +
                            t *
                              (-1.13520398 +
                                t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))),
    );
  return x >= 0 ? r : 2 - r;
}
