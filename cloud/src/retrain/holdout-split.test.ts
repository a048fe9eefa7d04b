import { describe, expect, it } from 'vitest';
import { holdoutSplit } from './holdout-split.ts';

const at = (minute: number) => new Date(Date.UTC(2026, 0, 1, 0, minute)).toISOString();
function samples(good: number, defect: number) {
  const out = [];
  let id = 1;
  for (let i = 0; i < good; i++)
    out.push({ labelId: id++, label: 'good' as const, capturedAt: at(i) });
  for (let i = 0; i < defect; i++)
    out.push({ labelId: id++, label: 'defect' as const, capturedAt: at(i) });
  return out;
}

describe('holdoutSplit', () => {
  it('holds out the newest share of each label', () => {
    const split = holdoutSplit(samples(10, 20), { share: 0.3, minPerLabel: 2 });
    const held = (label: string) => split.holdout.filter((s) => s.label === label);
    expect(held('good')).toHaveLength(3);
    expect(held('defect')).toHaveLength(6);
    // Newest first: every held-out sample of a label is newer than every trained one.
    for (const label of ['good', 'defect']) {
      const newestTrained = Math.max(
        ...split.train.filter((s) => s.label === label).map((s) => Date.parse(s.capturedAt)),
      );
      for (const s of held(label)) expect(Date.parse(s.capturedAt)).toBeGreaterThan(newestTrained);
    }
    expect(split.train.length + split.holdout.length).toBe(30);
  });

  it('keeps at least minPerLabel out when there are enough, and all of a small label', () => {
    const split = holdoutSplit(samples(12, 3), { share: 0.1, minPerLabel: 5 });
    expect(split.holdout.filter((s) => s.label === 'good')).toHaveLength(5);
    // Fewer than twice the minimum: the whole label goes to the held-out set.
    expect(split.holdout.filter((s) => s.label === 'defect')).toHaveLength(3);
    expect(split.train.every((s) => s.label === 'good')).toBe(true);
  });

  it('gives the same split for the same samples in any order', () => {
    const all = samples(9, 9);
    const a = holdoutSplit(all, { share: 0.4, minPerLabel: 1 });
    const b = holdoutSplit([...all].reverse(), { share: 0.4, minPerLabel: 1 });
    expect(b).toEqual(a);
  });
});
