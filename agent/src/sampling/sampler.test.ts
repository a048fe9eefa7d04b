import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import sharp from 'sharp';
import { afterEach, describe, expect, it } from 'vitest';
import type { FrameResult } from '@linesight/protocol';
import { EdgeStore } from '../store/edge-store.ts';
import { frameImageStats } from './image-stats.ts';
import { Sampler } from './sampler.ts';
import { classifyForSampling, DEFAULT_SAMPLING_POLICY } from './sampling-policy.ts';

const logger = pino({ level: 'silent' });
let dir: string | undefined;
let store: EdgeStore | undefined;

afterEach(async () => {
  store?.close();
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
});

function result(seq: number, score: number | null, verdict: FrameResult['verdict']): FrameResult {
  return {
    schema: 'linesight.result/v1',
    deviceId: 'd1',
    seq,
    capturedAt: new Date().toISOString(),
    verdict,
    score,
    threshold: 0.5,
    model: { name: 'tile', version: '1.0.0' },
    ...(verdict === 'unknown' ? { reason: 'no model loaded' } : {}),
    latencyMs: { capture: 0, queue: 0, preprocess: 1, inference: 1, total: 2 },
  };
}

describe('sampling', () => {
  it('classes frames: defects, unknowns, the uncertainty band, a random share', () => {
    const p = { ...DEFAULT_SAMPLING_POLICY, randomShare: 0.5 };
    const f = (score: number | null, verdict: FrameResult['verdict'], r = 0.9) =>
      classifyForSampling(p, { score, verdict, threshold: 0.5 }, r);
    expect(f(0.9, 'defect')).toBe('defect');
    expect(f(null, 'unknown')).toBe('unknown');
    expect(f(0.47, 'good')).toBe('uncertain');
    expect(f(0.1, 'good')).toBeUndefined();
    expect(f(0.1, 'good', 0.2)).toBe('random');
    expect(
      classifyForSampling(
        { ...p, defects: false },
        { score: 0.9, verdict: 'defect', threshold: 0.5 },
        0.9,
      ),
    ).toBeUndefined();
  });

  it('stores a resized JPEG and a PNG heatmap, capped per hour per class', async () => {
    dir = await mkdtemp(join(tmpdir(), 'sampler-'));
    store = await EdgeStore.open({ dir, quotaBytes: 1e9, logger });
    const image = await sharp({
      create: { width: 800, height: 400, channels: 3, background: '#808080' },
    })
      .jpeg()
      .toBuffer();
    const sampler = new Sampler({
      store,
      logger,
      policy: { capsPerHour: { defect: 3 }, maxSide: 200, randomShare: 0 },
      now: () => 0,
    });
    const map = { width: 4, height: 4, data: new Float32Array(16).fill(0.3) };
    for (let i = 0; i < 5; i++)
      sampler.offer({ seq: i, capturedAt: new Date(), image }, result(i, 0.9, 'defect'), map);
    sampler.offer({ seq: 9, capturedAt: new Date(), image }, result(9, 0.1, 'good'));
    await sampler.drain();
    expect(sampler.stats.sampled.defect).toBe(3);
    expect(sampler.stats.capped).toBe(2);
    const stored = store.pendingUploads(10);
    expect(stored.map((s) => s.frameSeq).sort()).toEqual([0, 1, 2]);
    const first = stored[0];
    const meta = await sharp(await readFile(first?.imagePath ?? '')).metadata();
    expect([meta.format, meta.width, meta.height]).toEqual(['jpeg', 200, 100]);
    const heat = await sharp(await readFile(first?.mapPath ?? '')).metadata();
    expect(heat.format).toBe('png');
  });

  it('computes brightness, contrast and sharpness from a normalized tensor', () => {
    const spec = {
      inputName: 'x',
      width: 16,
      height: 16,
      channels: 1 as const,
      layout: 'NCHW' as const,
      resize: 'fill' as const,
      scale: 1 / 255,
      mean: [0.5],
      std: [0.25],
    };
    const flat = new Float32Array(256).fill((100 / 255 - 0.5) / 0.25);
    const s = frameImageStats(flat, spec, 1);
    expect(s.brightness).toBeCloseTo(100, 3);
    expect(s.contrast).toBeCloseTo(0, 3);
    expect(s.sharpness).toBeCloseTo(0, 3);
    const checker = new Float32Array(256).map(
      (_, i) => ((((i % 16) + Math.floor(i / 16)) % 2 === 0 ? 0 : 200) / 255 - 0.5) / 0.25,
    );
    const c = frameImageStats(checker, spec, 1);
    expect(c.contrast).toBeGreaterThan(90);
    expect(c.sharpness).toBeGreaterThan(500);
  });
});
