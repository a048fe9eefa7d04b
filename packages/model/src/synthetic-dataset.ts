import sharp from 'sharp';
import { createRandom, type Random } from './random.ts';
import type { TrainingSample } from './training-sample.ts';

/** Options for a synthetic textured-surface dataset. */
export interface SyntheticDatasetOptions {
  seed: number;
  good: number;
  /** Defect images per class. */
  defects?: Partial<Record<SyntheticDefect, number>>;
  /** Image side in pixels; 128 unless given. */
  size?: number;
  format?: 'png' | 'jpeg';
}

/** Kinds of synthetic defect. */
export type SyntheticDefect = 'spot' | 'scratch';

/**
 * Generates noisy brushed-metal-like textures, good and with defects (a dark
 * spot or a thin dark scratch), as encoded images; deterministic for a seed.
 * Test support for this package (not exported; firmware-sim owns the
 * synthetic data the apps use).
 */
export async function generateSyntheticSamples(
  options: SyntheticDatasetOptions,
): Promise<TrainingSample[]> {
  const random = createRandom(options.seed);
  const size = options.size ?? 128;
  const plan: { label: 'good' | 'defect'; className: string; defect?: SyntheticDefect }[] = [];
  for (let i = 0; i < options.good; i++) plan.push({ label: 'good', className: 'good' });
  for (const defect of ['spot', 'scratch'] as const) {
    for (let i = 0; i < (options.defects?.[defect] ?? 0); i++)
      plan.push({ label: 'defect', className: defect, defect });
  }
  const samples: TrainingSample[] = [];
  for (const item of plan) {
    const pixels = texture(size, random);
    if (item.defect === 'spot') drawSpot(pixels, size, random);
    if (item.defect === 'scratch') drawScratch(pixels, size, random);
    const bytes = Uint8Array.from(pixels, (v) => Math.max(0, Math.min(255, Math.round(v))));
    const encoder = sharp(bytes, { raw: { width: size, height: size, channels: 1 } });
    const image = await (
      options.format === 'jpeg' ? encoder.jpeg({ quality: 92 }) : encoder.png()
    ).toBuffer();
    samples.push({ image, label: item.label, className: item.className });
  }
  return samples;
}

function gaussian(random: Random): number {
  // Irwin-Hall approximation: cheap, bounded, close enough to normal for textures.
  let sum = 0;
  for (let i = 0; i < 6; i++) sum += random();
  return (sum - 3) * Math.SQRT2;
}

function texture(size: number, random: Random): Float64Array {
  const out = new Float64Array(size * size);
  const base = 128 + (random() - 0.5) * 20;
  const angle = 0.15 * (random() - 0.5);
  const phase = random() * Math.PI * 2;
  const period = 6 + random() * 3;
  const amplitude = 5 + random() * 4;
  const gradient = (random() - 0.5) * 20;
  const cos = Math.cos(angle);
  const sin = Math.sin(angle);
  // Brushed streaks: a smoothed random offset per row.
  const streaks = new Float64Array(size);
  let streak = 0;
  for (let y = 0; y < size; y++) {
    streak = 0.7 * streak + 0.3 * gaussian(random) * 6;
    streaks[y] = streak;
  }
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const wave = amplitude * Math.sin(((x * sin + y * cos) * 2 * Math.PI) / period + phase);
      out[y * size + x] =
        base + gradient * (x / size - 0.5) + (streaks[y] as number) + wave + gaussian(random) * 6;
    }
  }
  return out;
}

function drawSpot(pixels: Float64Array, size: number, random: Random): void {
  const radius = 2.5 + random() * 2.5;
  const depth = 25 + random() * 25;
  const cx = 12 + random() * (size - 24);
  const cy = 12 + random() * (size - 24);
  for (let y = Math.floor(cy - radius - 1); y <= Math.ceil(cy + radius + 1); y++) {
    for (let x = Math.floor(cx - radius - 1); x <= Math.ceil(cx + radius + 1); x++) {
      const cover = Math.min(1, Math.max(0, radius + 0.5 - Math.hypot(x - cx, y - cy)));
      pixels[y * size + x] = (pixels[y * size + x] as number) - depth * cover;
    }
  }
}

function drawScratch(pixels: Float64Array, size: number, random: Random): void {
  const length = 20 + random() * 30;
  const angle = random() * Math.PI;
  const depth = 20 + random() * 20;
  const cx = 30 + random() * (size - 60);
  const cy = 30 + random() * (size - 60);
  const dx = (Math.cos(angle) * length) / 2;
  const dy = (Math.sin(angle) * length) / 2;
  const [x0, y0, x1, y1] = [cx - dx, cy - dy, cx + dx, cy + dy];
  for (let y = Math.floor(Math.min(y0, y1)) - 2; y <= Math.ceil(Math.max(y0, y1)) + 2; y++) {
    for (let x = Math.floor(Math.min(x0, x1)) - 2; x <= Math.ceil(Math.max(x0, x1)) + 2; x++) {
      const cover = Math.min(1, Math.max(0, 1.2 - segmentDistance(x, y, x0, y0, x1, y1)));
      pixels[y * size + x] = (pixels[y * size + x] as number) - depth * cover;
    }
  }
}

function segmentDistance(
  px: number,
  py: number,
  x0: number,
  y0: number,
  x1: number,
  y1: number,
): number {
  const vx = x1 - x0;
  const vy = y1 - y0;
  const t = Math.max(0, Math.min(1, ((px - x0) * vx + (py - y0) * vy) / (vx * vx + vy * vy)));
  return Math.hypot(px - (x0 + t * vx), py - (y0 + t * vy));
}
