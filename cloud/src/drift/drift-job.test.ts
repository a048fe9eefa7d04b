import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Value } from '@sinclair/typebox/value';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { WindowReference } from '@linesight/protocol';
import { EdgeDataStore } from '../ingest/edge-data-store.ts';
import {
  FIXTURE_THRESHOLD,
  NORMAL_LOOK,
  referenceOf,
  seededRandom,
  windowOf,
  type LineLook,
} from './drift-fixtures.ts';
import { DriftService } from './drift-service.ts';
import { DriftSettingsSchema, type DriftSettings } from './drift-settings.ts';

const WINDOW_MS = 60_000;
const T0 = Date.parse('2026-01-01T00:00:00Z');

function settings(overrides: Partial<DriftSettings> = {}): DriftSettings {
  return { ...(Value.Default(DriftSettingsSchema, {}) as DriftSettings), ...overrides };
}

describe('DriftJob on a real edge-data SQLite file', () => {
  let dir: string;
  let edge: EdgeDataStore;
  let drift: DriftService | undefined;
  let references: Map<string, WindowReference | undefined>;
  const seqs = new Map<string, number>();

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'linesight-drift-'));
    edge = new EdgeDataStore(join(dir, 'edge-data.sqlite'));
    references = new Map([['tile@1.0.0', referenceOf(NORMAL_LOOK, 200, 99)]]);
    seqs.clear();
  });

  afterEach(async () => {
    await drift?.close();
    drift = undefined;
    edge.close();
    await rm(dir, { recursive: true, force: true });
  });

  function open(s: DriftSettings = settings()): DriftService {
    drift = new DriftService({
      settings: s,
      path: join(dir, 'drift.sqlite'),
      windows: (fromMs, toMs) => edge.windows({ fromMs, toMs, limit: 1_000_000 }),
      model: (name, version) => {
        const key = `${name}@${version}`;
        if (!references.has(key)) return undefined;
        const window = references.get(key);
        return {
          threshold: FIXTURE_THRESHOLD,
          referenceProfile: window === undefined ? {} : { window },
        };
      },
      logger: pino({ level: 'silent' }),
    });
    return drift;
  }

  /** Stores window `minute` of a device (600 frames, as 10 fps for a minute). */
  function store(deviceId: string, minute: number, look: LineLook, seed: number, frames = 600) {
    const seq = (seqs.get(deviceId) ?? 0) + 1;
    seqs.set(deviceId, seq);
    edge.write([
      {
        kind: 'windows',
        deviceId,
        records: [
          windowOf({
            seq,
            startMs: T0 + minute * WINDOW_MS,
            durationMs: WINDOW_MS,
            frameCount: frames,
            look,
            next: seededRandom(seed * 1000 + minute),
          }),
        ],
      },
    ]);
  }

  const at = (minute: number) => T0 + minute * WINDOW_MS + 1;

  it('opens no alert on an unchanged line, for several seeds', async () => {
    const service = open();
    for (const seed of [1, 2, 3, 4, 5]) {
      for (let m = 0; m < 30; m++) store(`line-${seed}`, m, NORMAL_LOOK, seed);
    }
    for (let m = 5; m <= 30; m += 5) await service.job.run(at(m));
    expect(service.alerts.list()).toEqual([]);
    const last = service.job.stats.lastRun;
    expect(last?.devices).toBe(5);
    expect(last?.findings).toBeGreaterThan(0);
  });

  it('opens a product brightness alert within three windows of a lighting change, and resolves it with hysteresis', async () => {
    const service = open();
    for (let m = 0; m < 15; m++) store('line', m, NORMAL_LOOK, 7);
    expect((await service.job.run(at(15))).transitions).toEqual({});
    const brighter = { ...NORMAL_LOOK, brightness: NORMAL_LOOK.brightness + 40 };
    for (let m = 15; m < 18; m++) store('line', m, brighter, 7);
    await service.job.run(at(18));
    const open1 = service.alerts.list({ state: 'open' });
    const psiAlert = open1.find((a) => a.feature === 'brightness' && a.statistic === 'psi');
    expect(psiAlert).toMatchObject({
      deviceId: 'line',
      modelName: 'tile',
      modelVersion: '1.0.0',
      kind: 'product',
      state: 'open',
      level: 'alert',
    });
    expect(psiAlert?.value).toBeGreaterThan(0.25);
    expect(open1.every((a) => a.kind === 'product')).toBe(true);
    expect(service.alerts.list({ kind: 'camera' })).toEqual([]);

    // Back to normal: the alert holds while shifted windows are in the lookback,
    // then needs clearRuns (2) clean runs before it resolves.
    for (let m = 18; m < 40; m++) store('line', m, NORMAL_LOOK, 7);
    await service.job.run(at(25));
    expect(service.alerts.list({ state: 'open' }).length).toBeGreaterThan(0);
    await service.job.run(at(34));
    expect(service.alerts.list({ state: 'open' }).some((a) => a.feature === 'brightness')).toBe(
      true,
    );
    await service.job.run(at(35));
    const resolved = service.alerts.list({ state: 'resolved' });
    expect(resolved.some((a) => a.id === psiAlert?.id)).toBe(true);
    expect(resolved.find((a) => a.id === psiAlert?.id)?.peakValue).toBeGreaterThan(0.25);
  });

  it('opens a defect-rate alert when the line makes more defects', async () => {
    const service = open();
    for (let m = 0; m < 15; m++) store('line', m, { ...NORMAL_LOOK, defectRate: 0.3 }, 3);
    await service.job.run(at(15));
    expect(service.alerts.list({ state: 'open' })).toContainEqual(
      expect.objectContaining({ feature: 'defectRate', statistic: 'shift', level: 'alert' }),
    );
  });

  it('tells a frozen camera from product drift and holds product drift meanwhile', async () => {
    const service = open();
    for (let m = 0; m < 10; m++) store('line', m, NORMAL_LOOK, 4);
    for (let m = 10; m < 11; m++) store('line', m, { ...NORMAL_LOOK, frozen: true }, 4);
    const summary = await service.job.run(at(11));
    const alerts = service.alerts.list({ state: 'open' });
    expect(alerts).toEqual([
      expect.objectContaining({ kind: 'camera', feature: 'frozen', level: 'alert' }),
    ]);
    expect(summary.skipped['product: held while the camera is unhealthy']).toBe(1);
  });

  it('opens camera alerts for blur, a moved camera and a missing camera', async () => {
    const service = open();
    for (let m = 0; m < 10; m++) {
      store('blurred', m, m < 8 ? NORMAL_LOOK : { ...NORMAL_LOOK, sharpness: 1 }, 5);
      store('moved', m, m < 8 ? NORMAL_LOOK : { ...NORMAL_LOOK, band: -80 }, 6);
      store('gone', m, NORMAL_LOOK, 7, m < 7 ? 600 : 0);
    }
    await service.job.run(at(10));
    const open1 = service.alerts.list({ state: 'open' });
    const of = (deviceId: string) =>
      open1.filter((a) => a.deviceId === deviceId).map((a) => `${a.kind}/${a.feature}`);
    expect(of('blurred')).toEqual(['camera/blur']);
    expect(of('moved')).toEqual(['camera/moved']);
    expect(of('gone')).toEqual(['camera/missing']);
  });

  it('skips models without a window reference and says why', async () => {
    references.set('tile@1.0.0', undefined);
    const service = open();
    for (let m = 0; m < 15; m++)
      store('old-model', m, { ...NORMAL_LOOK, brightness: 200, defectRate: 0.5 }, 8);
    const summary = await service.job.run(at(15));
    expect(service.alerts.list()).toEqual([]);
    expect(summary.skipped).toMatchObject({
      'product: the model has no window reference profile (trained before it)': 1,
    });
  });

  it('judges nothing from a handful of frames', async () => {
    const service = open();
    for (let m = 0; m < 3; m++) store('quiet', m, { ...NORMAL_LOOK, brightness: 220 }, 9, 20);
    const summary = await service.job.run(at(3));
    expect(service.alerts.list()).toEqual([]);
    expect(Object.keys(summary.skipped).join('\n')).toMatch(
      /60 frames in the lookback, needs 1000/,
    );
  });

  it('runs one at a time: a tick during a run is skipped and counted', async () => {
    const service = open();
    for (let d = 0; d < 120; d++) store(`d${d}`, 0, NORMAL_LOOK, d);
    const first = service.job.run(at(1));
    expect(await service.job.runIfIdle()).toBeUndefined();
    await first;
    expect(service.job.stats.overlapped).toBe(1);
    expect(service.job.stats.runs).toBe(1);
  });
});
