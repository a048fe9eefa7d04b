import { LatticeNoise } from './lattice-noise.ts';
import type { Prng } from './prng.ts';

/** Every kind of defect the synthetic camera can draw, `none` first. */
export const DEFECT_KINDS = ['none', 'scratch', 'spot', 'crack'] as const;

/** A kind of surface defect, or `none` for a good part. */
export type DefectKind = (typeof DEFECT_KINDS)[number];

/** A drawn defect: a reflectance change per pixel and the pixels it covers. */
export interface DefectLayer {
  /** Signed change of surface reflectance (0..1 scale) per pixel, row-major. */
  delta: Float32Array;
  /** 255 where the defect is, 0 elsewhere, row-major. */
  mask: Uint8Array;
}

interface Point {
  x: number;
  y: number;
}

// Stamps closer than this (px) along a stroke make its edge look continuous.
const STAMP_SPACING_PX = 0.25;
// Coverage at or above which a pixel belongs to the defect mask.
const MASK_COVERAGE = 0.5;

function smoothstep(t: number): number {
  const c = t < 0 ? 0 : t > 1 ? 1 : t;
  return c * c * (3 - 2 * c);
}

// Coverage of thin strokes: the largest disc coverage of any stamp, plus the
// stroke parameter (0..1 along its length) of the stamp that won, for shading.
class StrokeCanvas {
  readonly coverage: Float32Array;
  readonly param: Float32Array;

  constructor(
    readonly width: number,
    readonly height: number,
  ) {
    this.coverage = new Float32Array(width * height);
    this.param = new Float32Array(width * height);
  }

  stamp(cx: number, cy: number, halfWidthPx: number, softPx: number, t: number): void {
    const reach = halfWidthPx + softPx;
    const reach2 = reach * reach;
    const x0 = Math.max(0, Math.floor(cx - reach - 0.5));
    const x1 = Math.min(this.width - 1, Math.ceil(cx + reach - 0.5));
    const y0 = Math.max(0, Math.floor(cy - reach - 0.5));
    const y1 = Math.min(this.height - 1, Math.ceil(cy + reach - 0.5));
    for (let y = y0; y <= y1; y += 1) {
      const dy = y + 0.5 - cy;
      const row = y * this.width;
      for (let x = x0; x <= x1; x += 1) {
        const dx = x + 0.5 - cx;
        const d2 = dx * dx + dy * dy;
        if (d2 >= reach2) continue;
        const d = Math.sqrt(d2);
        const cov = d <= halfWidthPx ? 1 : smoothstep(1 - (d - halfWidthPx) / softPx);
        const i = row + x;
        if (cov > (this.coverage[i] ?? 0)) {
          this.coverage[i] = cov;
          this.param[i] = t;
        }
      }
    }
  }

  // Stamps along a polyline; `halfWidthAt(t)` tapers the stroke, t in [0, 1].
  stroke(points: readonly Point[], softPx: number, halfWidthAt: (t: number) => number): void {
    let total = 0;
    for (let k = 1; k < points.length; k += 1) total += distance(at(points, k - 1), at(points, k));
    if (total === 0) return;
    let walked = 0;
    for (let k = 1; k < points.length; k += 1) {
      const a = at(points, k - 1);
      const b = at(points, k);
      const len = distance(a, b);
      const steps = Math.max(1, Math.ceil(len / STAMP_SPACING_PX));
      for (let s = 0; s <= steps; s += 1) {
        const f = s / steps;
        const t = (walked + f * len) / total;
        this.stamp(a.x + (b.x - a.x) * f, a.y + (b.y - a.y) * f, halfWidthAt(t), softPx, t);
      }
      walked += len;
    }
  }
}

function at(points: readonly Point[], k: number): Point {
  const p = points[k];
  if (p === undefined) throw new RangeError(`point ${k} out of range`);
  return p;
}

function distance(a: Point, b: Point): number {
  return Math.hypot(b.x - a.x, b.y - a.y);
}

// Moves (and if it must, shrinks) strokes so that all points lie at least
// `marginPx` inside the frame, at a random position.
function placeInFrame(
  strokes: Point[][],
  width: number,
  height: number,
  marginPx: number,
  prng: Prng,
): void {
  let minX = Infinity;
  let minY = Infinity;
  let maxX = -Infinity;
  let maxY = -Infinity;
  for (const stroke of strokes) {
    for (const p of stroke) {
      minX = Math.min(minX, p.x);
      minY = Math.min(minY, p.y);
      maxX = Math.max(maxX, p.x);
      maxY = Math.max(maxY, p.y);
    }
  }
  const roomX = width - 2 * marginPx;
  const roomY = height - 2 * marginPx;
  const scale = Math.min(
    1,
    roomX / Math.max(maxX - minX, 1e-9),
    roomY / Math.max(maxY - minY, 1e-9),
  );
  const spanX = (maxX - minX) * scale;
  const spanY = (maxY - minY) * scale;
  const left = marginPx + prng.uniform(0, Math.max(0, roomX - spanX));
  const top = marginPx + prng.uniform(0, Math.max(0, roomY - spanY));
  for (const stroke of strokes) {
    for (const p of stroke) {
      p.x = left + (p.x - minX) * scale;
      p.y = top + (p.y - minY) * scale;
    }
  }
}

function strokeLayer(
  canvas: StrokeCanvas,
  contrast: number,
  shadeAt: (t: number) => number,
): DefectLayer {
  const n = canvas.width * canvas.height;
  const delta = new Float32Array(n);
  const mask = new Uint8Array(n);
  for (let i = 0; i < n; i += 1) {
    const cov = canvas.coverage[i] ?? 0;
    if (cov === 0) continue;
    delta[i] = contrast * cov * shadeAt(canvas.param[i] ?? 0);
    if (cov >= MASK_COVERAGE) mask[i] = 255;
  }
  return { delta, mask };
}

// Slow variation of a stroke's strength along its length, in [1 - depth, 1].
function alongStrokeShade(prng: Prng, depth: number, wiggles: number): (t: number) => number {
  const noise = new LatticeNoise(prng, wiggles + 2, 2);
  return (t) => 1 - depth * (0.5 + 0.5 * noise.sample(t * wiggles, 0.5));
}

/** A thin (1-3 px) straight or gently curved line, brighter or darker than the surface. */
export function drawScratch(prng: Prng, width: number, height: number): DefectLayer {
  const diagonal = Math.hypot(width, height);
  const lengthPx = prng.uniform(0.18, 0.5) * diagonal;
  const angle = prng.uniform(0, Math.PI);
  // Control point offset of a quadratic Bezier; most scratches are nearly straight.
  const bendPx = prng.chance(0.4) ? 0 : prng.uniform(-0.06, 0.06) * lengthPx;
  const halfWidthPx = prng.uniform(0.5, 1.5);
  const bright = prng.chance(0.6);
  // Thin lines cover fewer pixels fully, so they need more contrast to read at all.
  const contrast = prng.uniform(0.11, 0.16) * (1.25 - 0.25 * (halfWidthPx - 0.5));
  const shade = alongStrokeShade(prng, 0.45, 4);

  const cos = Math.cos(angle);
  const sin = Math.sin(angle);
  const samples = Math.max(8, Math.ceil(lengthPx / 4));
  const points: Point[] = [];
  for (let s = 0; s <= samples; s += 1) {
    const t = s / samples;
    const along = (t - 0.5) * lengthPx;
    const across = 4 * bendPx * t * (1 - t);
    points.push({ x: along * cos - across * sin, y: along * sin + across * cos });
  }
  placeInFrame([points], width, height, 3 + halfWidthPx, prng);

  const canvas = new StrokeCanvas(width, height);
  // Scratches taper to a point at both ends.
  const taper = 0.08;
  canvas.stroke(points, 0.9, (t) =>
    Math.max(0.3, halfWidthPx * Math.min(1, t / taper, (1 - t) / taper)),
  );
  return strokeLayer(canvas, bright ? contrast : -contrast, shade);
}

/** A roughly round pit or stain with a soft edge, radius 2-6% of the shorter frame side. */
export function drawSpot(prng: Prng, width: number, height: number): DefectLayer {
  const radiusPx = Math.max(2.5, prng.uniform(0.02, 0.06) * Math.min(width, height));
  // Low harmonics of the outline make it irregular rather than a perfect disc.
  const harmonics = [
    { k: 2, amp: prng.uniform(0, 0.2), phase: prng.uniform(0, 2 * Math.PI) },
    { k: 3, amp: prng.uniform(0, 0.1), phase: prng.uniform(0, 2 * Math.PI) },
    { k: 5, amp: prng.uniform(0, 0.05), phase: prng.uniform(0, 2 * Math.PI) },
    { k: 8, amp: prng.uniform(0, 0.03), phase: prng.uniform(0, 2 * Math.PI) },
  ];
  // Uneven depth or deposit inside the outline, so the blob is not a flat disc.
  const mottleCells = 4;
  const mottle = new LatticeNoise(prng, mottleCells + 1, mottleCells + 1);
  const mottleAmp = prng.uniform(0.15, 0.35);
  const edgePx = Math.max(1.2, 0.3 * radiusPx);
  const dark = prng.chance(0.75);
  const contrast = prng.uniform(0.12, 0.19);
  // A pit catches light on the rim facing the lamp.
  const lightAngle = prng.uniform(0, 2 * Math.PI);
  const rimStrength = dark ? prng.uniform(0.2, 0.45) : 0;

  const reachPx = radiusPx * 1.39 + edgePx + 2;
  const marginPx = Math.ceil(reachPx);
  const cx = prng.uniform(marginPx, Math.max(marginPx, width - marginPx));
  const cy = prng.uniform(marginPx, Math.max(marginPx, height - marginPx));

  const n = width * height;
  const delta = new Float32Array(n);
  const mask = new Uint8Array(n);
  const x0 = Math.max(0, Math.floor(cx - reachPx));
  const x1 = Math.min(width - 1, Math.ceil(cx + reachPx));
  const y0 = Math.max(0, Math.floor(cy - reachPx));
  const y1 = Math.min(height - 1, Math.ceil(cy + reachPx));
  for (let y = y0; y <= y1; y += 1) {
    for (let x = x0; x <= x1; x += 1) {
      const dx = x + 0.5 - cx;
      const dy = y + 0.5 - cy;
      const rho = Math.hypot(dx, dy);
      const theta = Math.atan2(dy, dx);
      let outline = 1;
      for (const h of harmonics) outline += h.amp * Math.sin(h.k * theta + h.phase);
      const edgeRadiusPx = radiusPx * outline;
      const cov = smoothstep(0.5 + (edgeRadiusPx - rho) / edgePx);
      const inner = rho / edgeRadiusPx;
      // Deepest in the middle, like a pit or a drop of residue.
      const mx = (dx / reachPx + 1) * 0.5 * mottleCells;
      const my = (dy / reachPx + 1) * 0.5 * mottleCells;
      const body =
        cov *
        (0.65 + 0.35 * Math.max(0, 1 - inner * inner)) *
        (1 + mottleAmp * mottle.sample(mx, my));
      const rimOffset = (rho - edgeRadiusPx) / (0.25 * edgePx + 0.6);
      // Cut off at 2 widths (under half a grey level) so the spot stays local.
      const rim =
        Math.abs(rimOffset) > 2
          ? 0
          : rimStrength *
            Math.exp(-rimOffset * rimOffset) *
            Math.max(0, Math.cos(theta - lightAngle));
      const i = y * width + x;
      delta[i] = dark ? contrast * (rim - body) : contrast * body;
      if (rho <= edgeRadiusPx) mask[i] = 255;
    }
  }
  return { delta, mask };
}

// A jagged walk: short straight segments whose heading jitters but is pulled
// back towards `headingRad`, so the crack wanders without curling up.
function crackWalk(prng: Prng, start: Point, headingRad: number, lengthPx: number): Point[] {
  const points: Point[] = [{ ...start }];
  let heading = headingRad;
  let walked = 0;
  let p = start;
  while (walked < lengthPx) {
    const seg = Math.min(prng.uniform(1.5, 5), lengthPx - walked + 0.5);
    heading += prng.normal(0, 0.55) - 0.3 * (heading - headingRad);
    p = { x: p.x + seg * Math.cos(heading), y: p.y + seg * Math.sin(heading) };
    points.push(p);
    walked += seg;
  }
  return points;
}

/** A dark, jagged random-walk line, sometimes with one branch. */
export function drawCrack(prng: Prng, width: number, height: number): DefectLayer {
  const diagonal = Math.hypot(width, height);
  const lengthPx = prng.uniform(0.2, 0.42) * diagonal;
  const heading = prng.uniform(0, 2 * Math.PI);
  const halfWidthPx = prng.uniform(0.6, 1.2);
  const contrast = prng.uniform(0.13, 0.19);
  const shade = alongStrokeShade(prng, 0.35, 8);
  // Cracks open unevenly: the width wobbles along the length.
  const wobble = alongStrokeShade(prng, 0.45, 14);

  const main = crackWalk(prng, { x: 0, y: 0 }, heading, lengthPx);
  const strokes = [main];
  if (prng.chance(0.6)) {
    const from = main[Math.floor(main.length * prng.uniform(0.3, 0.7))] ?? main[0];
    if (from !== undefined) {
      const side = prng.chance(0.5) ? 1 : -1;
      const branchHeading = heading + side * prng.uniform(0.45, 1.0);
      strokes.push(crackWalk(prng, from, branchHeading, lengthPx * prng.uniform(0.25, 0.5)));
    }
  }
  placeInFrame(strokes, width, height, 3 + halfWidthPx, prng);

  const canvas = new StrokeCanvas(width, height);
  // Widest in the middle of the main crack, thinning to hairlines at the tips.
  canvas.stroke(
    main,
    0.8,
    (t) => halfWidthPx * wobble(t) * (0.35 + 0.65 * Math.sqrt(Math.sin(Math.PI * t))),
  );
  for (const branch of strokes.slice(1)) {
    canvas.stroke(branch, 0.8, (t) => halfWidthPx * wobble(1 - t) * 0.8 * (1 - 0.65 * t));
  }
  return strokeLayer(canvas, -contrast, shade);
}

/** Draws a defect of `kind` into a new layer, or returns undefined for `none`. */
export function drawDefect(
  kind: DefectKind,
  prng: Prng,
  width: number,
  height: number,
): DefectLayer | undefined {
  switch (kind) {
    case 'none':
      return undefined;
    case 'scratch':
      return drawScratch(prng, width, height);
    case 'spot':
      return drawSpot(prng, width, height);
    case 'crack':
      return drawCrack(prng, width, height);
  }
}
