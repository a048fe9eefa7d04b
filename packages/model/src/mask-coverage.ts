import sharp from 'sharp';

/** Share of a map cell's pixels that must be defect for the cell to count as one. */
export const CELL_DEFECT_SHARE = 0.25;

/**
 * The share of defect pixels (white, at least 128) in each cell of a
 * `gridWidth` x `gridHeight` grid over a mask resized to `width` x `height`
 * (the same `fill` resize as the image, nearest neighbour so that a mask stays
 * two-valued), row by row; undefined if the mask cannot be read.
 */
export async function maskCoverage(
  mask: Uint8Array,
  width: number,
  height: number,
  gridWidth: number,
  gridHeight: number,
): Promise<Float32Array | undefined> {
  let pixels: Buffer;
  try {
    // Transparency (a labelling tool's mask) counts as black: no defect.
    const { data, info } = await sharp(mask, { failOn: 'error' })
      .flatten({ background: '#000000' })
      .greyscale()
      .resize(width, height, { fit: 'fill', kernel: 'nearest' })
      .raw()
      .toBuffer({ resolveWithObject: true });
    if (info.channels !== 1) return undefined;
    pixels = data;
  } catch {
    return undefined;
  }
  const cellW = width / gridWidth;
  const cellH = height / gridHeight;
  const out = new Float32Array(gridWidth * gridHeight);
  for (let cy = 0; cy < gridHeight; cy++) {
    for (let cx = 0; cx < gridWidth; cx++) {
      let hit = 0;
      let count = 0;
      for (let y = Math.floor(cy * cellH); y < Math.floor((cy + 1) * cellH); y++) {
        for (let x = Math.floor(cx * cellW); x < Math.floor((cx + 1) * cellW); x++) {
          count++;
          if ((pixels[y * width + x] as number) >= 128) hit++;
        }
      }
      out[cy * gridWidth + cx] = count > 0 ? hit / count : 0;
    }
  }
  return out;
}

/**
 * The coverage (see maskCoverage) of each readable mask of `masks`, keyed by
 * its position there: what the map head learns from. A mask that cannot be
 * read only leaves its image out of it.
 */
export async function samplesMaskCoverage(
  masks: readonly (Uint8Array | undefined)[],
  size: number,
  grid: number,
): Promise<Map<number, Float32Array>> {
  const out = new Map<number, Float32Array>();
  for (const [k, mask] of masks.entries()) {
    if (mask === undefined) continue;
    const coverage = await maskCoverage(mask, size, size, grid, grid);
    if (coverage !== undefined) out.set(k, coverage);
  }
  return out;
}

/** Which cells count as defect cells in a pixel AUROC: covered by at least CELL_DEFECT_SHARE. */
export function defectCells(coverage: Float32Array): boolean[] {
  return Array.from(coverage, (share) => share >= CELL_DEFECT_SHARE);
}
