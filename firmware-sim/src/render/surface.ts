import { LinesightError } from '@linesight/protocol';
import { DEFECT_KINDS, drawDefect, type DefectKind } from './defects.ts';
import { LatticeNoise } from './lattice-noise.ts';
import { Prng, deriveSeed } from './prng.ts';

/** What to render: a surface of one seed and size, with or without a defect. */
export interface RenderSurfaceOptions {
  /** Any integer; the same options always give the same image. */
  seed: number;
  width: number;
  height: number;
  defect: DefectKind;
}

/** A rendered 8-bit greyscale surface and the mask of its defect. */
export interface RenderedSurface {
  width: number;
  height: number;
  /** 8-bit greyscale, row-major, `width * height` bytes. */
  pixels: Uint8Array;
  /** 255 on defect pixels, 0 elsewhere; all 0 for `none`. */
  mask: Uint8Array;
  defect: DefectKind;
}

/** Smallest frame side the renderer accepts; defects need room to be placed. */
export const MIN_SURFACE_SIDE_PX = 32;
/** Largest frame side the renderer accepts. */
export const MAX_SURFACE_SIDE_PX = 8192;

// Independent random streams per concern, so that adding a defect leaves the
// background of the same seed untouched, pixel for pixel.
const STREAM_SURFACE = 0;
const STREAM_DEFECT = 1;
const STREAM_GRAIN = 2;

function checkOptions(options: RenderSurfaceOptions): void {
  const problems: string[] = [];
  if (!Number.isSafeInteger(options.seed))
    problems.push(`seed must be an integer, got ${options.seed}`);
  for (const key of ['width', 'height'] as const) {
    const side = options[key];
    if (!Number.isInteger(side) || side < MIN_SURFACE_SIDE_PX || side > MAX_SURFACE_SIDE_PX) {
      problems.push(
        `${key} must be an integer in [${MIN_SURFACE_SIDE_PX}, ${MAX_SURFACE_SIDE_PX}], got ${side}`,
      );
    }
  }
  if (!(DEFECT_KINDS as readonly string[]).includes(options.defect)) {
    problems.push(
      `defect must be one of ${DEFECT_KINDS.join(', ')}, got ${String(options.defect)}`,
    );
  }
  if (problems.length > 0) {
    throw new LinesightError('ERR_CAMERA', `invalid surface options: ${problems.join('; ')}`, {
      details: { problems },
    });
  }
}

// Adds a tiny soft disc of reflectance change `contrast` centred at (cx, cy).
function stampSpeck(
  target: Float32Array,
  width: number,
  height: number,
  cx: number,
  cy: number,
  radiusPx: number,
  contrast: number,
): void {
  const reach = radiusPx + 0.8;
  const x0 = Math.max(0, Math.floor(cx - reach));
  const x1 = Math.min(width - 1, Math.ceil(cx + reach));
  const y0 = Math.max(0, Math.floor(cy - reach));
  const y1 = Math.min(height - 1, Math.ceil(cy + reach));
  for (let y = y0; y <= y1; y += 1) {
    for (let x = x0; x <= x1; x += 1) {
      const d = Math.hypot(x + 0.5 - cx, y + 0.5 - cy);
      const t = Math.min(1, Math.max(0, (reach - d) / 0.8));
      const i = y * width + x;
      target[i] = (target[i] ?? 0) + contrast * t * t * (3 - 2 * t);
    }
  }
}

/**
 * Renders a brushed-metal surface (uneven lighting, directional streaks, grain)
 * with an optional defect; deterministic in its options.
 */
export function renderSurface(options: RenderSurfaceOptions): RenderedSurface {
  checkOptions(options);
  const { seed, width, height, defect } = options;
  const n = width * height;
  const diagonal = Math.hypot(width, height);
  const p = new Prng(deriveSeed(seed, STREAM_SURFACE));

  // Per-part reflectance and per-frame exposure.
  const albedo = p.uniform(0.46, 0.56);
  const gain = p.uniform(0.93, 1.07);

  // Brushing runs roughly horizontally; parts sit on the line a little skewed.
  const brush = p.normal(0, 0.06);
  const cos = Math.cos(brush);
  const sin = Math.sin(brush);
  // Along-brush (v) and across-brush (u) coordinates, shifted to start at 0.
  const corners = [
    [0, 0],
    [width, 0],
    [0, height],
    [width, height],
  ] as const;
  let uMin = Infinity;
  let uMax = -Infinity;
  let vMin = Infinity;
  let vMax = -Infinity;
  for (const [x, y] of corners) {
    const u = -x * sin + y * cos;
    const v = x * cos + y * sin;
    uMin = Math.min(uMin, u);
    uMax = Math.max(uMax, u);
    vMin = Math.min(vMin, v);
    vMax = Math.max(vMax, v);
  }
  const uSpan = uMax - uMin;
  const vSpan = vMax - vMin;

  // Fine streaks: one lattice column per pixel across the brush, long along it;
  // a few columns are much stronger, the tool marks a detector must learn to ignore.
  const fineAlongPx = p.uniform(24, 48);
  const fineAmp = p.uniform(0.022, 0.034);
  const fine = new LatticeNoise(p, uSpan + 2, vSpan / fineAlongPx + 2, (r) =>
    r.chance(0.012) ? r.pick([-2.2, 2.2]) : r.uniform(-1, 1),
  );
  const coarseAcrossPx = p.uniform(3, 6);
  const coarseAlongPx = p.uniform(80, 160);
  const coarseAmp = p.uniform(0.015, 0.028);
  const coarse = new LatticeNoise(p, uSpan / coarseAcrossPx + 2, vSpan / coarseAlongPx + 2);

  // Lighting: a tilt, vignetting, a soft highlight band across the brushing
  // (brushed metal smears the lamp's reflection perpendicular to its grooves)
  // and faint large-scale mottling.
  const tiltDir = p.uniform(0, 2 * Math.PI);
  const tiltAmp = p.uniform(0.08, 0.24);
  const tiltX = Math.cos(tiltDir) * tiltAmp;
  const tiltY = Math.sin(tiltDir) * tiltAmp;
  const vignette = p.uniform(0.12, 0.32);
  const bandAmp = p.uniform(0.04, 0.14);
  const bandCenter = vSpan * p.uniform(0.1, 0.9);
  const bandInvSigma = 1 / (diagonal * p.uniform(0.18, 0.4));
  const mottleAmp = p.uniform(0.02, 0.045);
  const mottleCells = 4;
  const mottle = new LatticeNoise(p, mottleCells + 1, mottleCells + 1);
  const grainSd = p.uniform(2.5, 4.5);

  // Pores and glints: specks of one or two pixels, as dark or bright as a
  // defect, so that a defect is never simply the darkest or brightest pixel.
  const detail = new Float32Array(n);
  const speckCount = Math.round((n / 65536) * p.uniform(4, 14));
  for (let k = 0; k < speckCount; k += 1) {
    const contrast = p.uniform(0.12, 0.3) * (p.chance(0.7) ? -1 : 1);
    stampSpeck(
      detail,
      width,
      height,
      p.uniform(0, width),
      p.uniform(0, height),
      p.uniform(0.4, 1.1),
      contrast,
    );
  }

  const layer = drawDefect(defect, new Prng(deriveSeed(seed, STREAM_DEFECT)), width, height);
  if (layer !== undefined) {
    for (let i = 0; i < n; i += 1) detail[i] = (detail[i] ?? 0) + (layer.delta[i] ?? 0);
  }
  const grain = new Prng(deriveSeed(seed, STREAM_GRAIN));

  // Uint8ClampedArray clamps and rounds on store, which is the quantisation we want.
  const out = new Uint8ClampedArray(n);
  const invW = 1 / width;
  const invH = 1 / height;
  const fineInvAlong = 1 / fineAlongPx;
  const coarseInvAcross = 1 / coarseAcrossPx;
  const coarseInvAlong = 1 / coarseAlongPx;
  const scale = 255 * gain;
  for (let y = 0; y < height; y += 1) {
    const ny = y * invH - 0.5;
    const row = y * width;
    for (let x = 0; x < width; x += 1) {
      const nx = x * invW - 0.5;
      const u = -x * sin + y * cos - uMin;
      const v = x * cos + y * sin - vMin;
      const texture =
        fineAmp * fine.sample(u, v * fineInvAlong) +
        coarseAmp * coarse.sample(u * coarseInvAcross, v * coarseInvAlong);
      const band = (v - bandCenter) * bandInvSigma;
      const light =
        1 +
        tiltX * nx +
        tiltY * ny -
        vignette * 2 * (nx * nx + ny * ny) +
        bandAmp * Math.exp(-band * band) +
        mottleAmp * mottle.sample((nx + 0.5) * mottleCells, (ny + 0.5) * mottleCells);
      const i = row + x;
      const reflectance = albedo + texture + (detail[i] ?? 0);
      out[i] = scale * light * reflectance + grain.fastNormal(0, grainSd);
    }
  }

  return {
    width,
    height,
    pixels: new Uint8Array(out.buffer, out.byteOffset, out.length),
    mask: layer?.mask ?? new Uint8Array(n),
    defect,
  };
}
