import { describe, it, expect } from 'vitest';
import { frameDefect, frameSeed } from './frame-plan.ts';

describe('frameDefect', () => {
  it('is deterministic in (seed, seq, defectRate)', () => {
    for (let seq = 0; seq < 50; seq += 1) {
      expect(frameDefect(9, seq, 0.3)).toBe(frameDefect(9, seq, 0.3));
    }
    expect(frameSeed(9, 3)).toBe(frameSeed(9, 3));
    expect(frameSeed(9, 3)).not.toBe(frameSeed(9, 4));
  });

  it('never shows a defect at rate 0 and always does at rate 1', () => {
    for (let seq = 0; seq < 200; seq += 1) {
      expect(frameDefect(1, seq, 0)).toBe('none');
      expect(frameDefect(1, seq, 1)).not.toBe('none');
    }
  });

  it('shows defects in about defectRate of frames, of all three kinds', () => {
    const counts = { none: 0, scratch: 0, spot: 0, crack: 0 };
    const n = 6000;
    for (let seq = 0; seq < n; seq += 1) counts[frameDefect(2, seq, 0.25)] += 1;
    expect(counts.none / n).toBeGreaterThan(0.72);
    expect(counts.none / n).toBeLessThan(0.78);
    for (const kind of ['scratch', 'spot', 'crack'] as const) {
      expect(counts[kind] / n).toBeGreaterThan(0.06);
      expect(counts[kind] / n).toBeLessThan(0.105);
    }
  });

  it('keeps a frame defective when the rate rises', () => {
    // The decision compares one fixed draw per frame with the rate.
    for (let seq = 0; seq < 500; seq += 1) {
      if (frameDefect(4, seq, 0.1) !== 'none') expect(frameDefect(4, seq, 0.5)).not.toBe('none');
    }
  });
});
