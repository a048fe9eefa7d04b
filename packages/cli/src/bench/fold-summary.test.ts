import { describe, expect, it } from 'vitest';
import { summarizeFolds, type FoldRun } from './fold-summary.ts';

function run(fold: number, auroc: number | null, perClass: Record<string, number | null>): FoldRun {
  return {
    fold,
    trainImages: 80,
    testImages: 20,
    auroc,
    ap: auroc,
    pixelAuroc: auroc === null ? null : auroc - 0.1,
    map: null,
    f1: 0.5,
    perClass,
    trainingSeconds: 10 + fold,
    inferenceMsPerFrame: { threads1: 2, threads2: 1 },
    modelBytes: 1000 + fold,
  };
}

describe('summarizeFolds', () => {
  it('gives means, sample standard deviations and per class means over the folds', () => {
    const s = summarizeFolds([
      run(0, 0.8, { Crack: 0.6, Fray: 0.9 }),
      run(1, 0.9, { Crack: 0.8, Fray: null }),
      run(2, 1.0, { Crack: 1.0 }),
    ]);
    expect(s.aurocMean).toBe(0.9);
    expect(s.aurocStd).toBe(0.1);
    expect(s.aurocMin).toBe(0.8);
    expect(s.pixelAurocMean).toBe(0.8);
    expect(s.perClass).toEqual({ Crack: 0.8, Fray: 0.9 });
    expect(s.perClassStd).toEqual({ Crack: 0.2, Fray: null });
    expect(s.trainSeconds).toBe(11);
    expect(s.inferenceMs).toBe(2);
    expect(s.modelBytes).toBe(1002);
    expect(s.perFold).toHaveLength(3);
  });

  it('leaves out folds without a value', () => {
    const s = summarizeFolds([run(0, null, {}), run(1, 0.7, { Crack: 0.7 })]);
    expect(s.aurocMean).toBe(0.7);
    expect(s.aurocStd).toBeNull();
    expect(s.perClass).toEqual({ Crack: 0.7 });
  });
});
