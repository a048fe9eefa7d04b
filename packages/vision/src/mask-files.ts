import { extname } from 'node:path';

// Extensions whose image can have a mask beside it (MTD layout: `x.jpg` + mask `x.png`).
const MASK_PARTNERS = new Set(['.jpg', '.jpeg', '.bmp']);

function stemPath(path: string): string {
  return path.slice(0, path.length - extname(path).length);
}

/**
 * Splits image paths into frames and masks by the dataset rule: a `.png`
 * beside a `.jpg`/`.jpeg`/`.bmp` of the same stem is that image's mask.
 * `masks` maps each image to its mask. Order of `images` is kept.
 */
export function separateMasks(paths: readonly string[]): {
  images: string[];
  masks: Map<string, string>;
} {
  const partners = new Map<string, string>();
  for (const p of paths)
    if (MASK_PARTNERS.has(extname(p).toLowerCase())) partners.set(stemPath(p), p);
  const images: string[] = [];
  const masks = new Map<string, string>();
  for (const p of paths) {
    const partner = extname(p).toLowerCase() === '.png' ? partners.get(stemPath(p)) : undefined;
    if (partner !== undefined) masks.set(partner, p);
    else images.push(p);
  }
  return { images, masks };
}
