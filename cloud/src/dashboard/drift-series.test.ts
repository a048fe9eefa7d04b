import { Value } from '@sinclair/typebox/value';
import { describe, expect, it } from 'vitest';
import type { TelemetryWindow } from '@linesight/protocol';
import {
  FIXTURE_THRESHOLD,
  NORMAL_LOOK,
  referenceOf,
  seededRandom,
  windowOf,
} from '../drift/drift-fixtures.ts';
import { DriftSettingsSchema, type DriftSettings } from '../drift/drift-settings.ts';
import { driftSeries } from './drift-series.ts';

const settings: DriftSettings = {
  ...(Value.Default(DriftSettingsSchema, {}) as DriftSettings),
  lookbackSec: 300,
  minFrames: 500,
};
const T0 = Date.parse('2026-01-01T00:00:00Z');
const MINUTE = 60_000;
const reference = { threshold: FIXTURE_THRESHOLD, window: referenceOf(NORMAL_LOOK, 2000, 1) };

/** `count` one-minute windows of 300 frames from T0 + startMin, the look switching at `shiftAt`. */
function line(count: number, shiftAt: number, model = { name: 'tile', version: '1.0.0' }) {
  const next = seededRandom(7);
  const out: TelemetryWindow[] = [];
  for (let i = 0; i < count; i++)
    out.push(
      windowOf({
        seq: i,
        startMs: T0 + i * MINUTE,
        durationMs: MINUTE,
        frameCount: 300,
        look: i >= shiftAt ? { ...NORMAL_LOOK, brightness: 150 } : NORMAL_LOOK,
        next,
        model,
      }),
    );
  return out;
}

describe('driftSeries', () => {
  it('judges each window end over the lookback before it, as the job would, with its levels', () => {
    const windows = line(30, 15);
    const series = driftSeries({
      deviceId: 'd1',
      windows: [...windows].reverse(),
      truncated: false,
      reference: () => reference,
      settings,
      maxPoints: 100,
      fromMs: T0,
    });
    expect(series.levels.psi).toEqual(settings.psi);
    expect(series.levels.camera.frozenShare).toEqual(settings.camera.frozenShare);
    expect(series.points).toHaveLength(30);
    const psi = series.points.map((p) => p.values['brightness/psi']);
    // Under two windows (600 frames at most 500 needed): too few frames, listed as skipped.
    expect(psi[0]).toBeUndefined();
    expect(series.points[0]?.skipped.some((s) => s.startsWith('brightness: 300 frames'))).toBe(
      true,
    );
    // Before the shift: judged, no level; five windows after it (the whole lookback): alert.
    for (const p of psi.slice(2, 15)) expect(p?.level).toBe('ok');
    for (const p of psi.slice(20)) expect(p?.level).toBe('alert');
    expect(psi[29]?.value).toBeGreaterThan(settings.psi.alert);
    expect(series.points[29]?.values['brightness/ks']?.level).toBe('alert');
    expect(series.points[29]?.values['contrast/psi']?.level).toBe('ok');
    expect(series.points[29]?.at).toBe(windows[29]?.end);
  });

  it('keeps at most maxPoints, the newest among them, and only ends from fromMs', () => {
    const series = driftSeries({
      deviceId: 'd1',
      windows: line(40, 100),
      truncated: false,
      reference: () => reference,
      settings,
      maxPoints: 7,
      fromMs: T0 + 10 * MINUTE,
    });
    expect(series.points).toHaveLength(7);
    expect(series.points[0]?.at).toBe(new Date(T0 + 10 * MINUTE).toISOString());
    expect(series.points[6]?.at).toBe(new Date(T0 + 40 * MINUTE).toISOString());
    // The first point's lookback reaches before fromMs: windows that ended 5 to 10 minutes in.
    expect(series.points[0]?.values['brightness/psi']?.frames).toBe(1800);
  });

  it('judges only the windows of the newest model, and says when a model is unknown', () => {
    const old = line(10, 0, { name: 'tile', version: '0.9.0' });
    const current = line(20, 100).slice(10);
    const series = driftSeries({
      deviceId: 'd1',
      windows: [...old, ...current],
      truncated: false,
      reference: (_name, version) => (version === '1.0.0' ? reference : undefined),
      settings,
      maxPoints: 100,
      fromMs: T0,
    });
    const first = series.points[10];
    expect(first?.model).toEqual({ name: 'tile', version: '1.0.0' });
    // One window of 1.0.0 so far: the shifted 0.9.0 windows before it are not its evidence.
    expect(first?.values['brightness/psi']).toBeUndefined();
    expect(series.points[12]?.values['brightness/psi']?.level).toBe('ok');
    expect(series.points[3]?.skipped).toEqual(['tile@0.9.0: not in the registry']);
  });
});
