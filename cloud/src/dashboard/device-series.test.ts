import { describe, expect, it } from 'vitest';
import type { TelemetryWindow } from '@linesight/protocol';
import { NORMAL_LOOK, seededRandom, windowOf } from '../drift/drift-fixtures.ts';
import { deviceSeries, histogramQuantile, mergeHistograms } from './device-series.ts';

const T0 = Date.parse('2026-01-01T00:00:00Z');
const MINUTE = 60_000;

function windows(count: number, model = { name: 'tile', version: '1.0.0' }, from = 0) {
  const next = seededRandom(3);
  const out: TelemetryWindow[] = [];
  for (let i = 0; i < count; i++)
    out.push(
      windowOf({
        seq: from + i,
        startMs: T0 + (from + i) * MINUTE,
        durationMs: MINUTE,
        frameCount: 300,
        look: NORMAL_LOOK,
        next,
        model,
      }),
    );
  return out;
}

describe('histogramQuantile', () => {
  it('interpolates within the bucket that holds the rank, and answers the last bound for overflow', () => {
    const h = { le: [10, 20, 40], counts: [50, 40, 10, 0] };
    expect(histogramQuantile(h, 0.5)).toBe(10);
    expect(histogramQuantile(h, 0.7)).toBe(15);
    expect(histogramQuantile(h, 0.99)).toBe(38);
    expect(histogramQuantile({ le: [10], counts: [0, 5] }, 0.5)).toBe(10);
    expect(histogramQuantile({ le: [10], counts: [0, 0] }, 0.5)).toBeNull();
  });

  it('merges histograms over the same bounds and leaves out others', () => {
    const merged = mergeHistograms([
      { le: [1, 2], counts: [1, 2, 3] },
      { le: [1, 2], counts: [0, 0, 0] },
      { le: [1, 2], counts: [4, 0, 1] },
      { le: [1, 3], counts: [100, 0, 0] },
    ]);
    expect(merged).toEqual({ le: [1, 2], counts: [5, 2, 4] });
  });
});

describe('deviceSeries', () => {
  it('buckets windows in time with throughput, latency, defect rate and camera health', () => {
    const ws = windows(60);
    const series = deviceSeries({
      deviceId: 'd1',
      windows: [...ws].reverse(),
      fromMs: T0,
      toMs: T0 + 60 * MINUTE,
      truncated: false,
      maxPoints: 12,
    });
    expect(series.bucketSec).toBe(300);
    expect(series.windows).toBe(60);
    // Window ends at 1..60 minutes: buckets (0,5], (5,10], ... hold five each.
    expect(series.points).toHaveLength(12);
    const p = series.points[0];
    expect(p?.windows).toBe(5);
    expect(p?.frames).toBe(1500);
    expect(p?.fps).toBe(5);
    // Every fixture frame takes 4 ms: in the first latency bucket (0, 5].
    expect(p?.p99Ms).toBeGreaterThan(4);
    expect(p?.p99Ms).toBeLessThanOrEqual(5);
    const defects = ws.slice(0, 5).reduce((n, w) => n + w.counts.defect, 0);
    expect(p?.defectRate).toBeCloseTo(defects / 1500, 5);
    expect(p?.camera).toEqual({ frames: 1500, frozenShare: 0, darkShare: 0, clippedShare: 0 });
    const times = series.points.map((x) => Date.parse(x.at));
    expect(times).toEqual([...times].sort((a, b) => a - b));
  });

  it('fits the buckets to the span the windows cover, not only the range asked for', () => {
    const series = deviceSeries({
      deviceId: 'd1',
      windows: windows(3),
      fromMs: T0 + 3 * MINUTE - 24 * 3_600_000,
      toMs: T0 + 3 * MINUTE,
      truncated: false,
      maxPoints: 120,
    });
    expect(series.bucketSec).toBe(2);
    expect(series.points).toHaveLength(3);
  });

  it('lists the model versions in the order they ran, a version run twice twice', () => {
    const ws = [
      ...windows(3, { name: 'tile', version: '1.0.0' }, 0),
      ...windows(2, { name: 'tile', version: '1.1.0' }, 3),
      ...windows(4, { name: 'tile', version: '1.0.0' }, 5),
    ];
    const series = deviceSeries({
      deviceId: 'd1',
      windows: ws,
      fromMs: T0,
      toMs: T0 + 10 * MINUTE,
      truncated: false,
      maxPoints: 100,
    });
    expect(series.versions.map((v) => [v.version, v.windows, v.frames])).toEqual([
      ['1.0.0', 3, 900],
      ['1.1.0', 2, 600],
      ['1.0.0', 4, 1200],
    ]);
    expect(series.versions[1]?.from).toBe(new Date(T0 + 3 * MINUTE).toISOString());
    expect(series.versions[1]?.to).toBe(new Date(T0 + 5 * MINUTE).toISOString());
  });

  it('gives null rates, no camera and no latency for windows without frames', () => {
    const [empty] = windows(1);
    const w = {
      ...(empty as TelemetryWindow),
      counts: { good: 0, defect: 0, unknown: 0 },
      latencyMs: { le: [5], counts: [0, 0] },
    };
    delete w.camera;
    const series = deviceSeries({
      deviceId: 'd1',
      windows: [w],
      fromMs: T0,
      toMs: T0 + MINUTE,
      truncated: false,
      maxPoints: 10,
    });
    expect(series.points[0]).toMatchObject({
      frames: 0,
      fps: 0,
      p99Ms: null,
      defectRate: null,
      unknownRate: null,
      camera: null,
    });
  });
});
