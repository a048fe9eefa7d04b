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

  it('never lets a metric that cannot be computed win', () => {
    const c = compareModels(m(null), m(0.9), 'auroc', 0);
    expect(c).toMatchObject({ wins: false, improvement: null });
    expect(c.reason).toContain('cannot be computed');
  });
});
