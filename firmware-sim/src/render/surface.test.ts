import { describe, it, expect } from 'vitest';
import { isLinesightError } from '@linesight/protocol';
import type { DefectKind } from './defects.ts';
import { renderSurface, type RenderedSurface } from './surface.ts';

const SIZE = 256;
const DIAGONAL = Math.hypot(SIZE, SIZE);
const DEFECTS = ['scratch', 'spot', 'crack'] as const;
const SEEDS = Array.from({ length: 24 }, (_, i) => i * 7919 + 1);

function render(seed: number, defect: DefectKind, width = SIZE, height = SIZE): RenderedSurface {
  return renderSurface({ seed, width, height, defect });
}

// Grows a 0/255 mask by `steps` pixels (8-neighbourhood).
function dilate(mask: Uint8Array, width: number, height: number, steps: number): Uint8Array {
  let current = mask;
  for (let s = 0; s < steps; s += 1) {
    const next = new Uint8Array(current);
    for (let y = 0; y < height; y += 1) {
      for (let x = 0; x < width; x += 1) {
        if (current[y * width + x] === 0) continue;
        for (let dy = -1; dy <= 1; dy += 1) {
          for (let dx = -1; dx <= 1; dx += 1) {
            const nx = x + dx;
            const ny = y + dy;
            if (nx >= 0 && ny >= 0 && nx < width && ny < height) next[ny * width + nx] = 255;
          }
        }
      }
    }
    current = next;
  }
  return current;
}

function maskStats(s: RenderedSurface): { area: number; extentDiagonal: number } {
  let area = 0;
  let minX = Infinity;
  let minY = Infinity;
  let maxX = -Infinity;
  let maxY = -Infinity;
  for (let i = 0; i < s.mask.length; i += 1) {
    if (s.mask[i] === 0) continue;
    area += 1;
    const x = i % s.width;
    const y = Math.floor(i / s.width);
    minX = Math.min(minX, x);
    maxX = Math.max(maxX, x);
    minY = Math.min(minY, y);
    maxY = Math.max(maxY, y);
  }
  return { area, extentDiagonal: area === 0 ? 0 : Math.hypot(maxX - minX + 1, maxY - minY + 1) };
}

describe('renderSurface', () => {
  it('returns byte-identical pixels and masks for the same options', () => {
    for (const defect of ['none', ...DEFECTS] as const) {
      const a = render(12345, defect);
      const b = render(12345, defect);
      expect(Buffer.from(a.pixels).equals(Buffer.from(b.pixels))).toBe(true);
      expect(Buffer.from(a.mask).equals(Buffer.from(b.mask))).toBe(true);
    }
  });

  it('renders clearly different surfaces for different seeds', () => {
    const a = render(1, 'none').pixels;
    const b = render(2, 'none').pixels;
    let differing = 0;
    for (let i = 0; i < a.length; i += 1) if (a[i] !== b[i]) differing += 1;
    expect(differing / a.length).toBeGreaterThan(0.8);
  });

  it('returns the asked size and defect, row-major, for non-square frames', () => {
    const s = render(3, 'scratch', 160, 96);
    expect(s).toMatchObject({ width: 160, height: 96, defect: 'scratch' });
    expect(s.pixels).toHaveLength(160 * 96);
    expect(s.mask).toHaveLength(160 * 96);
    expect(maskStats(s).area).toBeGreaterThan(0);
  });

  it('looks like a lit surface: mid-grey, textured, not flat and not clipped', () => {
    for (const seed of SEEDS.slice(0, 6)) {
      const { pixels } = render(seed, 'none');
      let sum = 0;
      let sumSq = 0;
      let clipped = 0;
      for (const v of pixels) {
        sum += v;
        sumSq += v * v;
        if (v === 0 || v === 255) clipped += 1;
      }
      const mean = sum / pixels.length;
      const sd = Math.sqrt(sumSq / pixels.length - mean * mean);
      expect(mean).toBeGreaterThan(80);
      expect(mean).toBeLessThan(180);
      expect(sd).toBeGreaterThan(4);
      expect(sd).toBeLessThan(40);
      expect(clipped).toBe(0);
    }
  });

  it('leaves the mask empty for none', () => {
    for (const seed of SEEDS) expect(maskStats(render(seed, 'none')).area).toBe(0);
  });

  it.each(DEFECTS)('masks a plausibly sized %s', (defect) => {
    const side = SIZE;
    for (const seed of SEEDS) {
      const { area, extentDiagonal } = maskStats(render(seed, defect));
      if (defect === 'spot') {
        // Radius 2-6% of the side, outline within +-35%.
        expect(area).toBeGreaterThan(Math.PI * (0.02 * side * 0.6) ** 2);
        expect(area).toBeLessThan(Math.PI * (0.06 * side * 1.4) ** 2);
        expect(extentDiagonal).toBeLessThan(2 * 1.4 * 0.06 * side * Math.SQRT2 + 4);
      } else {
        expect(area).toBeGreaterThan(0.15 * DIAGONAL);
        expect(area).toBeLessThan(0.12 * side * side);
        expect(extentDiagonal).toBeGreaterThan((defect === 'scratch' ? 0.15 : 0.08) * DIAGONAL);
      }
    }
  });

  it.each(DEFECTS)(
    'changes only pixels at the %s, leaving the surface of the seed as it was',
    (defect) => {
      for (const seed of SEEDS.slice(0, 8)) {
        const good = render(seed, 'none');
        const bad = render(seed, defect);
        const near = dilate(bad.mask, SIZE, SIZE, 4);
        let insideDiff = 0;
        let insideCount = 0;
        let changedFar = 0;
        for (let i = 0; i < good.pixels.length; i += 1) {
          const diff = Math.abs((bad.pixels[i] ?? 0) - (good.pixels[i] ?? 0));
          if (near[i] === 0 && diff !== 0) changedFar += 1;
          if (bad.mask[i] !== 0) {
            insideDiff += diff;
            insideCount += 1;
          }
        }
        expect(changedFar).toBe(0);
        expect(insideDiff / insideCount).toBeGreaterThan(15);
      }
    },
  );

  it.each(DEFECTS)('makes a %s stand out from the texture around it', (defect) => {
    for (const seed of SEEDS) {
      const s = render(seed, defect);
      const inner = dilate(s.mask, SIZE, SIZE, 3);
      const outer = dilate(s.mask, SIZE, SIZE, 8);
      let inSum = 0;
      let inCount = 0;
      let ringSum = 0;
      let ringSumSq = 0;
      let ringCount = 0;
      for (let i = 0; i < s.pixels.length; i += 1) {
        const v = s.pixels[i] ?? 0;
        if (s.mask[i] !== 0) {
          inSum += v;
          inCount += 1;
        } else if (outer[i] !== 0 && inner[i] === 0) {
          ringSum += v;
          ringSumSq += v * v;
          ringCount += 1;
        }
      }
      const ringMean = ringSum / ringCount;
      const ringSd = Math.sqrt(ringSumSq / ringCount - ringMean * ringMean);
      const contrast = Math.abs(inSum / inCount - ringMean);
      expect(contrast).toBeGreaterThan(ringSd);
      expect(contrast).toBeGreaterThan(10);
    }
  });

  it.each(DEFECTS)(
    'keeps %s contrast moderate: rarely the darkest or brightest pixel',
    (defect) => {
      let extremeInMask = 0;
      for (const seed of SEEDS) {
        const { pixels, mask } = render(seed, defect);
        let minI = 0;
        let maxI = 0;
        for (let i = 1; i < pixels.length; i += 1) {
          if ((pixels[i] ?? 0) < (pixels[minI] ?? 0)) minI = i;
          if ((pixels[i] ?? 0) > (pixels[maxI] ?? 0)) maxI = i;
        }
        if (mask[minI] !== 0 || mask[maxI] !== 0) extremeInMask += 1;
      }
      expect(extremeInMask / SEEDS.length).toBeLessThan(0.5);
    },
  );

  it('rejects bad options with ERR_CAMERA naming every problem', () => {
    let caught: unknown;
    try {
      renderSurface({ seed: 1.5, width: 8, height: 256, defect: 'dent' as DefectKind });
    } catch (err) {
      caught = err;
    }
    expect(isLinesightError(caught, 'ERR_CAMERA')).toBe(true);
    const message = caught instanceof Error ? caught.message : '';
    expect(message).toMatch(/seed/);
    expect(message).toMatch(/width/);
    expect(message).toMatch(/defect/);
  });
});
