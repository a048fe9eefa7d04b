import { describe, expect, it } from 'vitest';
import { createRandom } from './random.ts';
import { SYNTHETIC_ANOMALY_KINDS, paintSyntheticAnomaly } from './synthetic-anomalies.ts';

describe('paintSyntheticAnomaly', () => {
  const side = 64;
  const random = createRandom(3);
  const base = Float32Array.from({ length: side * side }, () => 0.4 + 0.2 * random());
  const donor = Float32Array.from({ length: side * side }, () => 0.3 + 0.4 * random());

  it('paints every kind inside [0, 1] with a mask, deterministically for a seed', () => {
    for (const kind of SYNTHETIC_ANOMALY_KINDS) {
      const a = paintSyntheticAnomaly(base, donor, side, kind, createRandom(7));
      const b = paintSyntheticAnomaly(base, donor, side, kind, createRandom(7));
      expect(Buffer.from(a.image.buffer).equals(Buffer.from(b.image.buffer))).toBe(true);
      expect(a.image.every((v) => v >= 0 && v <= 1)).toBe(true);
      expect(a.mask.some((v) => v === 1)).toBe(true);
      let changed = 0;
      for (let i = 0; i < base.length; i++) if (a.image[i] !== base[i]) changed++;
      expect(changed).toBeGreaterThan(0);
    }
  });
});
