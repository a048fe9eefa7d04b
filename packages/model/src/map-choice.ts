import { auroc } from './metrics.ts';
import type { PyramidModelParams } from './pyramid-graph.ts';
import { scoreFeatures } from './reference-forward.ts';

/** A validation image for comparing maps: its features and, for a defect with a mask, which cells of the map are defects. */
export interface MapValidationImage {
  features: Float32Array;
  /** Defect cells of the output map; undefined for a good image (no defect cell) or a defect without a mask (left out). */
  defectCells?: readonly boolean[];
  defect: boolean;
}

/**
 * Pixel AUROC of each model's map on the validation images, as `model eval`
 * counts it (per output cell; good images' cells are all good ones), or null
 * when the validation split has no masked defect cell.
 */
export function validationPixelAuroc(
  models: readonly PyramidModelParams[],
  images: readonly MapValidationImage[],
): (number | null)[] {
  const used = images.filter((im) => !im.defect || im.defectCells !== undefined);
  return models.map((params) => {
    const scores: number[] = [];
    const labels: boolean[] = [];
    for (const im of used) {
      const map = scoreFeatures(im.features, params).map.data;
      for (let j = 0; j < map.length; j++) {
        scores.push(map[j] as number);
        labels.push(im.defectCells?.[j] === true);
      }
    }
    return auroc(scores, labels);
  });
}
