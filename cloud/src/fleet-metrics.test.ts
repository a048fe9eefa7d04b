import { describe, expect, it } from 'vitest';
import type { Telemetry } from '@linesight/protocol';
import { NORMAL_LOOK, seededRandom, windowOf } from './drift/drift-fixtures.ts';
import {
  FleetMetrics,
  deviceAggregates,
  windowAggregates,
  type FleetWindow,
} from './fleet-metrics.ts';
import { renderPrometheus, type MetricSample } from './metrics.ts';

const T0 = Date.parse('2026-01-01T00:00:00Z');

function valueOf(samples: MetricSample[], name: string, labels: Record<string, string> = {}) {
  const s = samples.find((x) => x.name === name);
  return s?.values.find((v) => Object.entries(labels).every(([k, val]) => v.labels?.[k] === val))
    ?.value;
}

function telemetry(fps: number, p99: number): Telemetry {
  return {
    schema: 'linesight.telemetry/v1',
    deviceId: 'x',
    at: new Date(T0).toISOString(),
    intervalSec: 5,
    model: null,
    frames: { captured: 10, scored: 10, unknown: 0, droppedOverload: 0, defects: 1 },
    fps,
    latencyMs: { p50: 1, p99, max: p99 },
    errors: 0,
  };
}

function device(online: boolean, fps: number, p99: number, version: string | null) {
  return {
    online,
    telemetry: telemetry(fps, p99),
    reported: (version === null
      ? { model: null }
      : {
          model: { name: 'tile', version },
        }) as unknown as import('./registry/device-registry.ts').DeviceRecord['reported'],
  };
}

describe('fleet aggregates', () => {
  it('sums throughput and spreads p99 latency over online devices, with versions running', () => {
    const samples = deviceAggregates([
      device(true, 5, 10, '1.0.0'),
      device(true, 3, 40, '1.0.0'),
      device(true, 2, 20, '1.1.0'),
      device(false, 100, 900, '1.1.0'),
    ]);
    expect(valueOf(samples, 'linesight_fleet_frames_per_second')).toBe(10);
    expect(valueOf(samples, 'linesight_fleet_device_p99_latency_ms', { stat: 'median' })).toBe(20);
    expect(valueOf(samples, 'linesight_fleet_device_p99_latency_ms', { stat: 'max' })).toBe(40);
    expect(valueOf(samples, 'linesight_fleet_devices_running', { version: '1.0.0' })).toBe(2);
    expect(valueOf(samples, 'linesight_fleet_devices_running', { version: '1.1.0' })).toBe(1);
  });

  it('rolls recent windows up: frames by verdict, defect rate, latency quantiles, agent resources', () => {
    const next = seededRandom(5);
    const windows: FleetWindow[] = ['a', 'b'].flatMap((deviceId, d) =>
      [0, 1].map((i) => ({
        deviceId,
        ...windowOf({
          seq: i,
          startMs: T0 + i * 60_000,
          durationMs: 60_000,
          frameCount: 100,
          look: NORMAL_LOOK,
          next,
        }),
        cpuCores: 0.25 * (d + 1),
        rssMb: 100 * (d + 1),
      })),
    );
    const samples = windowAggregates(windows, 300);
    const defects = windows.reduce((n, w) => n + w.counts.defect, 0);
    expect(valueOf(samples, 'linesight_fleet_window_devices')).toBe(2);
    expect(valueOf(samples, 'linesight_fleet_window_frames', { verdict: 'defect' })).toBe(defects);
    expect(valueOf(samples, 'linesight_fleet_window_defect_rate')).toBeCloseTo(defects / 400, 5);
    // Every fixture frame takes 4 ms: in the (0, 5] bucket of the fixture's histogram.
    const p99 = valueOf(samples, 'linesight_fleet_window_inference_latency_ms', {
      quantile: '0.99',
    });
    expect(p99).toBeGreaterThan(0);
    expect(p99).toBeLessThanOrEqual(5);
    expect(valueOf(samples, 'linesight_fleet_agent_cpu_cores', { stat: 'sum' })).toBe(0.75);
    expect(valueOf(samples, 'linesight_fleet_agent_rss_mb', { stat: 'max' })).toBe(200);
    // Bounded labels only: none names a device.
    const labels = new Set(
      samples.flatMap((s) => s.values.flatMap((v) => Object.keys(v.labels ?? {}))),
    );
    expect([...labels].sort()).toEqual(['quantile', 'stat', 'state', 'verdict']);
    expect(renderPrometheus(samples)).not.toMatch(/"(a|b)"/);
  });

  it('reads the windows at most once per cache period', () => {
    let reads = 0;
    let nowMs = T0;
    const metrics = new FleetMetrics({
      windows: () => {
        reads++;
        return [];
      },
      devices: () => [],
      lookbackSec: 300,
      maxWindows: 100,
      cacheMs: 10_000,
      now: () => nowMs,
    });
    metrics.samples();
    nowMs += 5_000;
    metrics.samples();
    expect(reads).toBe(1);
    nowMs += 5_000;
    expect(valueOf(metrics.samples(), 'linesight_fleet_window_defect_rate')).toBe(0);
    expect(reads).toBe(2);
  });
});
