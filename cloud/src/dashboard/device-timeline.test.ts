import { describe, expect, it } from 'vitest';
import { driftAlert } from '../drift/drift-fixtures.ts';
import type { RolloutRecord } from '../registry/rollout-store.ts';
import { deviceTimeline } from './device-timeline.ts';

const at = (min: number) =>
  new Date(Date.parse('2026-01-01T00:00:00Z') + min * 60_000).toISOString();

const alert = driftAlert({
  id: 7,
  deviceId: 'd1',
  modelVersion: '1.1.0',
  state: 'resolved',
  peakValue: 0.9,
  frames: 600,
  windowStart: at(20),
  windowEnd: at(25),
  openedAt: at(25),
  updatedAt: at(40),
  resolvedAt: at(40),
});

const rollout: RolloutRecord = {
  id: 'r1',
  modelName: 'tile',
  modelVersion: '1.1.0',
  deviceIds: ['d1', 'd2'],
  state: 'completed',
  createdAt: at(9),
  createdBy: 'alice',
  spec: null,
  progress: null,
  reason: null,
  updatedAt: at(12),
};

describe('deviceTimeline', () => {
  it('merges versions, events, alerts, rollouts and audit entries newest first, within the range', () => {
    const t = deviceTimeline({
      deviceId: 'd1',
      versions: [
        { name: 'tile', version: '1.0.0', from: at(0), to: at(10), windows: 10, frames: 3000 },
        { name: 'tile', version: '1.1.0', from: at(10), to: at(50), windows: 40, frames: 12_000 },
      ],
      events: [
        {
          boot: 1,
          seq: 1,
          at: at(10),
          level: 'info',
          type: 'model.activated',
          message: 'tile 1.1.0',
        },
        { boot: 1, seq: 2, at: at(90), level: 'error', type: 'camera.error', message: 'late' },
      ],
      alerts: [alert],
      rollouts: [rollout],
      audit: [
        {
          id: 1,
          at: at(-5),
          actor: 'admin',
          action: 'device.provision',
          subject: 'd1',
          details: {},
        },
      ],
      fromMs: Date.parse(at(-10)),
      toMs: Date.parse(at(60)),
      limit: 100,
    });
    expect(t.entries.map((e) => [e.kind, e.title])).toEqual([
      ['alert', 'Resolved: product brightness psi'],
      ['alert', 'Alert opened: product brightness psi'],
      ['rollout', 'Rollout of tile 1.1.0 completed'],
      ['model', 'tile 1.0.0 → tile 1.1.0'],
      ['event', 'model.activated'],
      ['rollout', 'Rollout of tile 1.1.0 started'],
      ['model', 'Running tile 1.0.0'],
      ['audit', 'device.provision'],
    ]);
    expect(t.entries[1]).toMatchObject({ level: 'error', ref: { alert: 7 } });
    expect(t.omitted).toBe(0);
  });

  it('keeps the newest entries up to the limit and counts the rest', () => {
    const t = deviceTimeline({
      deviceId: 'd1',
      versions: [],
      events: Array.from({ length: 5 }, (_, i) => ({
        boot: 1,
        seq: i,
        at: at(i),
        level: 'warn' as const,
        type: 'camera.error',
        message: `m${i}`,
      })),
      alerts: [],
      rollouts: [],
      audit: [],
      fromMs: Date.parse(at(0)),
      toMs: Date.parse(at(10)),
      limit: 2,
    });
    expect(t.entries.map((e) => e.detail)).toEqual(['m4', 'm3']);
    expect(t.omitted).toBe(3);
  });
});
