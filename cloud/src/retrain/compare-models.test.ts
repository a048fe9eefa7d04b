import { describe, expect, it } from 'vitest';
import { compareModels } from './compare-models.ts';
import type { HeldOutMetrics } from './retrain-store.ts';

const m = (auroc: number | null, f1: number | null = 0.5): HeldOutMetrics => ({
  auroc,
  ap: auroc,
  f1,
  precision: null,
  recall: null,
  threshold: 1,
  images: 10,
});

describe('compareModels', () => {
  it('lets the challenger win only by the margin', () => {
    expect(compareModels(m(0.8), m(0.85), 'auroc', 0.02)).toMatchObject({ wins: true });
    expect(compareModels(m(0.8), m(0.81), 'auroc', 0.02)).toMatchObject({ wins: false });
    expect(compareModels(m(0.9), m(0.8), 'auroc', 0)).toMatchObject({ wins: false });
    expect(compareModels(m(0.8), m(0.8), 'auroc', 0).wins).toBe(true);
    expect(compareModels(m(0.8), m(0.85), 'auroc', 0.02).improvement).toBeCloseTo(0.05, 10);
  });

  it('compares on the configured metric', () => {
    expect(compareModels(m(0.9, 0.5), m(0.9, 0.9), 'f1', 0.1).wins).toBe(true);
    expect(compareModels(m(0.9, 0.5), m(0.9, 0.9), 'auroc', 0.1).wins).toBe(false);
  });

  it('refuses a better-ranking challenger whose F1 falls more than maxF1Drop below', () => {
    // AUROC up by 0.3, F1 down from 0.60 to 0.29: it ranks the line better but calls it worse.
    const c = compareModels(m(0.3, 0.6), m(0.6, 0.29), 'auroc', 0.05, 0.15);
    expect(c).toMatchObject({ wins: false });
    expect(c.improvement).toBeCloseTo(0.3, 10);
    expect(c.reason).toMatch(/f1 challenger 0.2900 vs champion 0.6000 falls more than maxF1Drop/);
    // Within the tolerance, it wins; without the condition, so does the first.
    expect(compareModels(m(0.3, 0.6), m(0.6, 0.46), 'auroc', 0.05, 0.15).wins).toBe(true);
    expect(compareModels(m(0.3, 0.6), m(0.6, 0.29), 'auroc', 0.05, null).wins).toBe(true);
    // A challenger that does not win on the metric keeps that reason.
    expect(compareModels(m(0.3, 0.6), m(0.31, 0.1), 'auroc', 0.05, 0.15).reason).not.toMatch(
      /maxF1Drop/,
    );
    // On F1 itself the margin already decides.
    expect(compareModels(m(0.9, 0.5), m(0.9, 0.6), 'f1', 0.05, 0.01).wins).toBe(true);
  });

  it('never lets a metric that cannot be computed win', () => {
    const c = compareModels(m(null), m(0.9), 'auroc', 0);
    expect(c).toMatchObject({ wins: false, improvement: null });
    expect(c.reason).toContain('cannot be computed');
  });
});
