import { describe, expect, it, vi } from 'vitest';
import type { DeviceAlertLevels } from '../drift/alert-store.ts';
import type { DeviceRecord } from '../registry/device-registry.ts';
import { FleetWatch } from './fleet-watch.ts';
import { fleetRow, fleetTotals, type FleetRow } from './fleet-view.ts';

function device(id: string, scored: number, online = true): DeviceRecord {
  return {
    id,
    labels: { line: '1' },
    createdAt: '2026-01-01T00:00:00.000Z',
    online,
    lastSeen: '2026-01-01T00:00:05.000Z',
    reported: null,
    telemetry: {
      schema: 'linesight.telemetry/v1',
      deviceId: id,
      at: `2026-01-01T00:00:0${scored % 10}.000Z`,
      intervalSec: 1,
      model: null,
      frames: { captured: scored, scored, unknown: 0, droppedOverload: 0, defects: 0 },
      fps: 2,
      latencyMs: { p50: 1, p99: 2, max: 3 },
      errors: 0,
    },
    desired: null,
  };
}

const silent = { warn: () => undefined };

describe('fleetRow', () => {
  it('shows rates only once there are frames, and nulls before any telemetry', () => {
    const fresh: DeviceRecord = { ...device('a', 0), telemetry: null };
    expect(fleetRow(fresh)).toMatchObject({
      fps: null,
      p99Ms: null,
      defectRate: null,
      unknownRate: null,
      framesScored: 0,
      version: null,
    });
    expect(fleetRow(device('b', 10))).toMatchObject({ defectRate: 0, unknownRate: 0, p99Ms: 2 });
  });

  it('counts online, moving and erroring devices', () => {
    const rows: FleetRow[] = [
      { ...fleetRow(device('a', 1)), version: '1.0.0', desiredVersion: '1.1.0' },
      { ...fleetRow(device('b', 1, false)), lastError: { code: 'X', message: 'y' } },
    ];
    expect(fleetTotals(rows)).toEqual({ devices: 2, online: 1, moving: 1, withErrors: 1 });
  });
});

describe('FleetWatch', () => {
  it("shows each device's worst open camera and drift alert, and sends the row when one opens", () => {
    const fleet = [device('a', 1), device('b', 1)];
    let open = new Map<string, DeviceAlertLevels>();
    const watch = new FleetWatch({
      devices: { list: () => fleet },
      alerts: () => open,
      pollMs: 60_000,
      logger: silent,
    });
    expect(watch.snapshot().map((r) => [r.id, r.camera, r.drift])).toEqual([
      ['a', 'ok', 'ok'],
      ['b', 'ok', 'ok'],
    ]);
    const seen: FleetRow[][] = [];
    const off = watch.subscribe((changed) => seen.push(changed));
    open = new Map([['b', { camera: 'alert', product: 'warning' }]]);
    watch.poll();
    expect(seen.map((c) => c.map((r) => [r.id, r.camera, r.drift]))).toEqual([
      [['b', 'alert', 'warning']],
    ]);
    off();
  });

  it('tells listeners only the rows that changed, and reads nothing when no one listens', () => {
    let fleet = [device('a', 1), device('b', 1)];
    const list = vi.fn(() => fleet);
    const watch = new FleetWatch({ devices: { list }, pollMs: 60_000, logger: silent });
    const seen: string[][] = [];
    const off = watch.subscribe((changed, all) => {
      seen.push(changed.map((r) => r.id));
      expect(all).toHaveLength(2);
    });
    watch.poll();
    expect(seen).toEqual([]);
    fleet = [device('a', 1), device('b', 2)];
    watch.poll();
    expect(seen).toEqual([['b']]);
    off();
    const reads = list.mock.calls.length;
    watch.close();
    watch.close();
    expect(list.mock.calls.length).toBe(reads);
    expect(watch.subscribe(() => undefined)).toBeTypeOf('function');
  });

  it('keeps polling when a listener throws or the registry fails once', () => {
    let fail = false;
    let n = 1;
    const warn = vi.fn();
    const watch = new FleetWatch({
      devices: {
        list: () => {
          if (fail) throw new Error('disk');
          return [device('a', n)];
        },
      },
      pollMs: 60_000,
      logger: { warn },
    });
    const good = vi.fn();
    watch.subscribe(() => {
      throw new Error('listener');
    });
    watch.subscribe(good);
    n = 2;
    watch.poll();
    expect(good).toHaveBeenCalledTimes(1);
    fail = true;
    watch.poll();
    fail = false;
    n = 3;
    watch.poll();
    expect(good).toHaveBeenCalledTimes(2);
    // The throwing listener twice, the failed read once.
    expect(warn).toHaveBeenCalledTimes(3);
    watch.close();
  });
});
