import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { anomalyHeatmapPng } from './heatmap.ts';

/** The RGB of each cell of a rendered 1-row heatmap. */
async function cells(png: Buffer, count: number): Promise<number[][]> {
  const { data, info } = await sharp(png).raw().toBuffer({ resolveWithObject: true });
  const step = info.width / count;
  return Array.from({ length: count }, (_, i) => {
    const at = Math.floor(i * step + step / 2) * info.channels;
    return [data[at] as number, data[at + 1] as number, data[at + 2] as number];
  });
}

describe('anomalyHeatmapPng', () => {
  const data = Float32Array.of(0, 0.5, 1, 2);

  it('draws the threshold at the red-yellow turn when the map is in the units of the score', async () => {
    const png = await anomalyHeatmapPng({ width: 4, height: 1, data }, 1);
    // scale 2 x threshold: 0 black, 0.5 (t 0.25) red, 1 (t 0.5) red-yellow, 2 white.
    expect(await cells(png, 4)).toEqual([
      [0, 0, 0],
      [191, 0, 0],
      [255, 128, 0],
      [255, 255, 255],
    ]);
  });

  it("uses the map's own full-heat value when the model's contract gives one", async () => {
    // A map of defect scores in 0..1 beside a score threshold of 4: by the threshold all would be dark.
    const png = await anomalyHeatmapPng({ width: 4, height: 1, data, scale: 1 }, 4);
    expect(await cells(png, 4)).toEqual([
      [0, 0, 0],
      [255, 128, 0],
      [255, 255, 255],
      [255, 255, 255],
    ]);
  });
});
