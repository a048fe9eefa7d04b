import sharp from 'sharp';
import type { AnomalyMap } from '@linesight/vision';

/**
 * Renders an anomaly map as a small PNG heatmap (black -> red -> yellow ->
 * white), scaled to the map's own `scale` (the model's contract says what
 * value is full heat, e.g. 1 for defect scores in 0..1), else so that
 * `threshold` sits at the red-yellow turn; cells stay cells (nearest-neighbour
 * upscaling to at least 64 px on the long side).
 */
export async function anomalyHeatmapPng(
  map: AnomalyMap,
  threshold: number | null,
): Promise<Buffer> {
  const { width, height, data } = map;
  const scale = fullHeat(map, threshold);
  const rgb = Buffer.alloc(width * height * 3);
  for (let i = 0; i < width * height; i++) {
    const t = Math.min(1, Math.max(0, (data[i] ?? 0) / scale));
    rgb[i * 3] = Math.round(255 * Math.min(1, t * 3));
    rgb[i * 3 + 1] = Math.round(255 * Math.min(1, Math.max(0, t * 3 - 1)));
    rgb[i * 3 + 2] = Math.round(255 * Math.min(1, Math.max(0, t * 3 - 2)));
  }
  const factor = Math.max(1, Math.ceil(64 / Math.max(width, height)));
  return sharp(rgb, { raw: { width, height, channels: 3 } })
    .resize({ width: width * factor, height: height * factor, kernel: 'nearest' })
    .png({ compressionLevel: 9 })
    .toBuffer();
}

/** The map value drawn white: the contract's, else twice the threshold, else the map's maximum, else 1. */
function fullHeat(map: AnomalyMap, threshold: number | null): number {
  if (map.scale !== undefined && map.scale > 0) return map.scale;
  if (threshold !== null && threshold > 0) return 2 * threshold;
  let max = 0;
  for (const v of map.data) if (Number.isFinite(v) && v > max) max = v;
  return max > 0 ? max : 1;
}
