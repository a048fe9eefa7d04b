import type { Random } from './random.ts';

/** Kinds of synthetic anomaly painted onto good images. */
export type SyntheticAnomalyKind =
  'blob' | 'crack' | 'cut-paste' | 'smudge' | 'edge-chip' | 'shading';

/** Every kind, in the order they are drawn in turn. */
export const SYNTHETIC_ANOMALY_KINDS: readonly SyntheticAnomalyKind[] = [
  'blob',
  'crack',
  'cut-paste',
  'smudge',
  'edge-chip',
  'shading',
];

/**
 * Paints one generic synthetic defect (CutPaste/DRAEM style) onto a copy of a
 * good image: a dark or bright blob, a thin crack, a patch cut from another
 * place or another good image, a blurred or noisy smudge, a chipped edge, or
 * uneven shading (a large soft patch a little brighter or darker).
 * Strength is relative to the image's own contrast, so it works for any
 * product. `pixels` is a side x side plane with values in [0, 1]; `donor` is
 * another good image of the same size. Returns the image and its defect mask.
 */
export function paintSyntheticAnomaly(
  pixels: Float32Array,
  donor: Float32Array,
  side: number,
  kind: SyntheticAnomalyKind,
  random: Random,
): { image: Float32Array; mask: Uint8Array } {
  const image = Float32Array.from(pixels);
  const mask = new Uint8Array(side * side);
  const { mean, std } = moments(pixels);
  const contrast = Math.max(std, 0.02);
  const sign = random() < 0.7 ? -1 : 1;
  const s = side / 256;
  switch (kind) {
    case 'blob': {
      const rx = (2 + random() * 14) * s;
      const ry = rx * (0.5 + random());
      const cx = random() * side;
      const cy = random() * side;
      const depth = sign * contrast * (1.5 + random() * 3);
      paintEllipse(image, mask, side, cx, cy, rx, ry, random() * Math.PI, (v, w) => v + depth * w);
      break;
    }
    case 'crack': {
      let x = random() * side;
      let y = random() * side;
      let angle = random() * Math.PI * 2;
      const steps = Math.round((15 + random() * 60) * s);
      const width = (0.6 + random() * 1.4) * s;
      const depth = sign * contrast * (1.5 + random() * 2.5);
      for (let i = 0; i < steps; i++) {
        paintEllipse(image, mask, side, x, y, width, width, 0, (v, w) => v + depth * w, true);
        angle += (random() - 0.5) * 0.6;
        x += Math.cos(angle);
        y += Math.sin(angle);
      }
      break;
    }
    case 'cut-paste': {
      const w = Math.max(4, Math.round((8 + random() * 40) * s));
      const h = Math.max(4, Math.round((8 + random() * 40) * s));
      const fromOther = random() < 0.5;
      const source = fromOther ? donor : pixels;
      const sx = Math.floor(random() * (side - w));
      const sy = Math.floor(random() * (side - h));
      const tx = Math.floor(random() * (side - w));
      const ty = Math.floor(random() * (side - h));
      const flip = random() < 0.5;
      const gain = 0.7 + random() * 0.6;
      for (let y = 0; y < h; y++) {
        for (let x = 0; x < w; x++) {
          const v = source[(sy + (flip ? h - 1 - y : y)) * side + sx + x] as number;
          const i = (ty + y) * side + tx + x;
          image[i] = mean + (v - mean) * gain + (random() - 0.5) * 0.02;
          mask[i] = 1;
        }
      }
      break;
    }
    case 'smudge': {
      const r = (6 + random() * 24) * s;
      const cx = random() * side;
      const cy = random() * side;
      const blur = boxBlur(pixels, side, Math.max(1, Math.round(3 * s)));
      const shift = sign * contrast * random();
      const noisy = random() < 0.5;
      paintEllipse(
        image,
        mask,
        side,
        cx,
        cy,
        r,
        r * (0.5 + random()),
        random() * Math.PI,
        (v, w, i) =>
          noisy
            ? v + w * (shift + (random() - 0.5) * contrast * 3)
            : v * (1 - w) + w * ((blur[i] as number) + shift),
      );
      break;
    }
    case 'shading': {
      // Uneven surface: a large, soft-edged patch a little brighter or darker than the rest.
      const r = (20 + random() * 60) * s;
      const ry = r * (0.5 + random());
      const cx = random() * side;
      const cy = random() * side;
      const angle = random() * Math.PI;
      const shift = sign * contrast * (0.6 + random() * 1.4);
      const cos = Math.cos(angle);
      const sin = Math.sin(angle);
      for (let y = 0; y < side; y++) {
        for (let x = 0; x < side; x++) {
          const u = ((x - cx) * cos + (y - cy) * sin) / r;
          const v = (-(x - cx) * sin + (y - cy) * cos) / ry;
          const w = Math.exp(-2 * (u * u + v * v));
          if (w < 0.05) continue;
          const i = y * side + x;
          image[i] = (image[i] as number) + shift * w;
          if (w > 0.3) mask[i] = 1;
        }
      }
      break;
    }
    case 'edge-chip': {
      // A dark bite out of one side of the frame.
      const edge = Math.floor(random() * 4);
      const r = (5 + random() * 25) * s;
      const along = random() * side;
      const [cx, cy] =
        edge === 0
          ? [along, 0]
          : edge === 1
            ? [along, side - 1]
            : edge === 2
              ? [0, along]
              : [side - 1, along];
      const level = Math.max(0, mean - contrast * (2 + random() * 3));
      paintEllipse(
        image,
        mask,
        side,
        cx,
        cy,
        r,
        r * (0.4 + random()),
        random() * Math.PI,
        (v, w) => v * (1 - w) + level * w,
      );
      break;
    }
  }
  for (let i = 0; i < image.length; i++) image[i] = Math.min(1, Math.max(0, image[i] as number));
  return { image, mask };
}

function moments(pixels: Float32Array): { mean: number; std: number } {
  let sum = 0;
  let squares = 0;
  for (const v of pixels) {
    sum += v;
    squares += v * v;
  }
  const mean = sum / pixels.length;
  return { mean, std: Math.sqrt(Math.max(0, squares / pixels.length - mean * mean)) };
}

/** Applies `f(value, weight, index)` inside a soft-edged rotated ellipse. */
function paintEllipse(
  image: Float32Array,
  mask: Uint8Array,
  side: number,
  cx: number,
  cy: number,
  rx: number,
  ry: number,
  angle: number,
  f: (value: number, weight: number, index: number) => number,
  keepMax = false,
): void {
  const reach = Math.ceil(Math.max(rx, ry) + 2);
  const cos = Math.cos(angle);
  const sin = Math.sin(angle);
  for (
    let y = Math.max(0, Math.floor(cy - reach));
    y <= Math.min(side - 1, Math.ceil(cy + reach));
    y++
  ) {
    for (
      let x = Math.max(0, Math.floor(cx - reach));
      x <= Math.min(side - 1, Math.ceil(cx + reach));
      x++
    ) {
      const dx = x - cx;
      const dy = y - cy;
      const u = (dx * cos + dy * sin) / rx;
      const v = (-dx * sin + dy * cos) / ry;
      const d = Math.sqrt(u * u + v * v);
      const weight = Math.min(1, Math.max(0, (1 - d) * Math.min(rx, ry) + 0.5));
      if (weight <= 0) continue;
      const i = y * side + x;
      // A crack is painted as overlapping dots: paint each pixel once, at its strongest.
      if (keepMax && mask[i] === 1) continue;
      image[i] = f(image[i] as number, weight, i);
      if (weight >= 0.5) mask[i] = 1;
    }
  }
}

function boxBlur(pixels: Float32Array, side: number, radius: number): Float32Array {
  const out = new Float32Array(pixels.length);
  const tmp = new Float32Array(pixels.length);
  const n = 2 * radius + 1;
  for (let y = 0; y < side; y++) {
    for (let x = 0; x < side; x++) {
      let sum = 0;
      for (let d = -radius; d <= radius; d++)
        sum += pixels[y * side + Math.min(side - 1, Math.max(0, x + d))] as number;
      tmp[y * side + x] = sum / n;
    }
  }
  for (let y = 0; y < side; y++) {
    for (let x = 0; x < side; x++) {
      let sum = 0;
      for (let d = -radius; d <= radius; d++)
        sum += tmp[Math.min(side - 1, Math.max(0, y + d)) * side + x] as number;
      out[y * side + x] = sum / n;
    }
  }
  return out;
}
