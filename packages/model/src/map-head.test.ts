import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { fitMapHead, fitTrainingMapHead, mapHeadLogits, maskCellLabels } from './map-head.ts';
import { maskCoverage } from './mask-coverage.ts';
import { auroc } from './metrics.ts';
import { fitPadim, padimMap } from './padim.ts';
import { createRandom } from './random.ts';

const GRID = 4;
const CELLS = GRID * GRID;
const CHANNELS = 6;
/** Cells where a defect raises channel 2 (a direction PaDiM's distance dilutes among five noisy ones). */
const DEFECT_CELLS = [5, 10];

/** Pooled relative features (cells x channels) of one part: noise, and a defect in channel 2 when asked. */
function part(random: () => number, defect: boolean): Float32Array {
  const f = new Float32Array(CELLS * CHANNELS);
  for (let k = 0; k < CELLS; k++)
    for (let c = 0; c < CHANNELS; c++) {
      const noise = (random() + random() + random() - 1.5) * 2;
      f[k * CHANNELS + c] = c === 2 ? noise * 0.2 : noise * 3;
    }
  if (defect)
    for (const k of DEFECT_CELLS) f[k * CHANNELS + 2] = (f[k * CHANNELS + 2] as number) + 1.2;
  return f;
}

function coverageOf(cells: readonly number[]): Float32Array {
  const c = new Float32Array(CELLS);
  for (const k of cells) c[k] = 1;
  return c;
}

describe('maskCellLabels', () => {
  it('marks cells a mask covers by a quarter, leaves out slivers, and counts empty cells as good', () => {
    expect(Array.from(maskCellLabels(Float32Array.of(0.5, 0.05, 0, 0.25)))).toEqual([1, -1, 0, 1]);
    // A blowhole smaller than a quarter of any cell marks none.
    expect(Array.from(maskCellLabels(Float32Array.of(0.1, 0.02, 0, 0)))).toEqual([-1, -1, 0, 0]);
  });
});

describe('fitMapHead', () => {
  const random = createRandom(5);
  const goods = Array.from({ length: 60 }, () => part(random, false));
  const defects = Array.from({ length: 20 }, () => part(random, true));
  const padim = fitPadim(goods, CHANNELS, GRID);
  const images = [
    ...goods.map((pooled) => ({ pooled })),
    ...defects.map((pooled) => ({ pooled, coverage: coverageOf(DEFECT_CELLS) })),
  ];

  it('learns which cells the masks mark better than the distance ranks them, the same for the same seed', () => {
    const head = fitMapHead(images, padim, { seed: 1, mapBlurPasses: 0 });
    const again = fitMapHead(images, padim, { seed: 1, mapBlurPasses: 0 });
    expect(Buffer.from(again.head.w1.buffer).equals(Buffer.from(head.head.w1.buffer))).toBe(true);
    expect(again.head.b2).toBe(head.head.b2);
    expect(head.head.inputs).toBe(CHANNELS + 1);

    const fresh = createRandom(6);
    const scores = { head: [] as number[], distance: [] as number[] };
    const labels: boolean[] = [];
    for (let n = 0; n < 40; n++) {
      const defect = n % 2 === 1;
      const pooled = part(fresh, defect);
      scores.head.push(...mapHeadLogits(pooled, padim, head));
      scores.distance.push(...padimMap(pooled, padim));
      for (let k = 0; k < CELLS; k++) labels.push(defect && DEFECT_CELLS.includes(k));
    }
    const headAuroc = auroc(scores.head, labels) as number;
    const distanceAuroc = auroc(scores.distance, labels) as number;
    expect(headAuroc).toBeGreaterThan(0.95);
    expect(headAuroc).toBeGreaterThan(distanceAuroc + 0.05);
  });

  it('is left out, with the reason, when too few training defects have a mask marking a cell', () => {
    const train = [
      ...goods.map(() => ({ features: new Float32Array(0), defect: false, synthetic: false })),
      ...defects.map(() => ({ features: new Float32Array(0), defect: true, synthetic: false })),
    ];
    const coverage = new Map([
      [60, coverageOf(DEFECT_CELLS)],
      [61, coverageOf([])],
    ]);
    const result = fitTrainingMapHead(train, coverage, padim, (f) => f, { seed: 1 });
    expect(result.params).toBeUndefined();
    expect(result.masks).toBe(1);
    expect('reason' in result && result.reason).toMatch(/1 training defect images have a mask/);
  });
});

describe('maskCoverage', () => {
  it('reads a mask with transparency as its grey values, transparent pixels as no defect', async () => {
    // 4x4 RGBA: the left half opaque white (defect), the right half transparent.
    const rgba = new Uint8Array(4 * 4 * 4);
    for (let y = 0; y < 4; y++)
      for (let x = 0; x < 4; x++)
        rgba.set(x < 2 ? [255, 255, 255, 255] : [255, 255, 255, 0], (y * 4 + x) * 4);
    const png = await sharp(rgba, { raw: { width: 4, height: 4, channels: 4 } })
      .png()
      .toBuffer();
    const coverage = await maskCoverage(png, 4, 4, 2, 2);
    expect(Array.from(coverage ?? [])).toEqual([1, 0, 1, 0]);
    expect(await maskCoverage(Buffer.from('not a png'), 4, 4, 2, 2)).toBeUndefined();
  });
});
