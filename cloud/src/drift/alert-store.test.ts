import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { AlertStore } from './alert-store.ts';
import type { DriftFinding } from './drift-evaluate.ts';

const dirs: string[] = [];
const stores: AlertStore[] = [];

async function open(): Promise<AlertStore> {
  const dir = await mkdtemp(join(tmpdir(), 'alert-store-'));
  dirs.push(dir);
  // Clears after one run below half the warning level.
  const store = new AlertStore(join(dir, 'alerts.sqlite'), {
    clearRatio: 0.5,
    clearRuns: 1,
    warningOf: () => 0.1,
  });
  stores.push(store);
  return store;
}

afterEach(async () => {
  for (const s of stores.splice(0)) s.close();
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

function finding(
  kind: DriftFinding['kind'],
  feature: string,
  level: DriftFinding['level'],
  value: number,
): DriftFinding {
  return {
    kind,
    feature,
    statistic: 'psi',
    value,
    level,
    frames: 500,
    windowStartMs: 0,
    windowEndMs: 60_000,
  };
}

const subject = (deviceId: string) => ({ deviceId, modelName: 'tile', modelVersion: '1.0.0' });

describe('AlertStore.openLevelsByDevice', () => {
  it('gives each device its worst open alert per kind, and forgets resolved ones', async () => {
    const alerts = await open();
    expect(alerts.openLevelsByDevice().size).toBe(0);
    alerts.apply(
      subject('a'),
      [
        finding('product', 'brightness', 'warning', 0.15),
        finding('product', 'score', 'alert', 0.4),
        finding('camera', 'frozen', 'warning', 0.2),
      ],
      1000,
    );
    alerts.apply(subject('b'), [finding('camera', 'dark', 'alert', 0.9)], 1000);
    alerts.apply(subject('c'), [finding('product', 'contrast', 'ok', 0.01)], 1000);
    expect(Object.fromEntries(alerts.openLevelsByDevice())).toEqual({
      a: { product: 'alert', camera: 'warning' },
      b: { product: 'ok', camera: 'alert' },
    });
    // The score alert clears (below half the warning level): the brightness warning remains.
    alerts.apply(subject('a'), [finding('product', 'score', 'ok', 0.01)], 2000);
    alerts.apply(subject('b'), [finding('camera', 'dark', 'ok', 0.01)], 2000);
    expect(Object.fromEntries(alerts.openLevelsByDevice())).toEqual({
      a: { product: 'warning', camera: 'warning' },
    });
  });
});
