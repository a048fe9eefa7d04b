import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import type { DriftAlert } from '../drift/alert-store.ts';
import { driftAlert } from '../drift/drift-fixtures.ts';
import { RetrainTriggers, type RetrainTriggerOptions } from './retrain-triggers.ts';

const NOW = Date.UTC(2026, 0, 2);
let triggers: RetrainTriggers | undefined;

function alert(over: Partial<DriftAlert>): DriftAlert {
  return driftAlert({
    deviceId: 'd1',
    frames: 1000,
    windowStart: new Date(NOW - 60_000).toISOString(),
    windowEnd: new Date(NOW).toISOString(),
    openedAt: new Date(NOW - 1000).toISOString(),
    updatedAt: new Date(NOW).toISOString(),
    ...over,
  });
}

function make(
  over: Omit<Partial<RetrainTriggerOptions>, 'settings'> & {
    settings?: Partial<RetrainTriggerOptions['settings']>;
  },
) {
  const started: string[] = [];
  triggers = new RetrainTriggers({
    models: () => new Set(['tile', 'other']),
    start: (model, trigger, detail) => started.push(`${model} ${trigger} ${detail}`),
    active: () => false,
    lastJobMs: () => undefined,
    openAlerts: () => [],
    labelTimes: () => [],
    logger: pino({ level: 'silent' }),
    ...over,
    settings: {
      models: ['tile'],
      onAlert: true,
      newLabels: 3,
      triggerCheckSec: 60,
      ...over.settings,
    },
  });
  return started;
}

afterEach(() => {
  triggers?.close();
  triggers = undefined;
});

describe('RetrainTriggers', () => {
  it('starts a job on a product alert at alert level opened after the last job', () => {
    const started = make({
      openAlerts: () => [
        alert({ id: 1, kind: 'camera', feature: 'blur' }),
        alert({ id: 2, level: 'warning' }),
        alert({ id: 3, modelName: 'other' }),
        alert({ id: 4, openedAt: new Date(NOW - 10_000).toISOString() }),
        alert({ id: 5 }),
      ],
      lastJobMs: () => NOW - 5000,
    });
    triggers?.check(NOW);
    expect(started).toEqual(['tile alert alert 5: d1 brightness psi 0.400']);
  });

  it('ignores camera faults: a blurred camera is not a reason to retrain', () => {
    const started = make({ openAlerts: () => [alert({ kind: 'camera', feature: 'sharpness' })] });
    triggers?.check(NOW);
    expect(started).toEqual([]);
  });

  it('starts a job after N labels since the last job', () => {
    let times = [NOW - 9000, NOW - 3000, NOW - 2000];
    const started = make({
      settings: { onAlert: false },
      labelTimes: () => times,
      lastJobMs: () => NOW - 5000,
    });
    triggers?.check(NOW);
    expect(started).toEqual([]);
    times = [...times, NOW - 1000];
    triggers?.check(NOW);
    expect(started).toEqual(['tile labels 3 new labels']);
  });

  it('leaves models alone that have a job under way, are not listed or not registered', () => {
    const started = make({
      settings: { models: ['tile', 'ghost'] },
      active: (m) => m === 'tile',
      openAlerts: () => [alert({}), alert({ modelName: 'ghost' })],
      labelTimes: () => [NOW, NOW, NOW],
    });
    triggers?.check(NOW);
    triggers?.runSchedule();
    expect(started).toEqual([]);
  });

  it('runs the schedule for every listed model without a job', () => {
    const started = make({ settings: { models: ['tile', 'other'] }, active: (m) => m === 'other' });
    triggers?.runSchedule();
    expect(started).toEqual(['tile schedule schedule']);
  });

  it('refuses a schedule node-cron cannot parse', () => {
    make({ settings: { schedule: 'every tuesday' } });
    expect(() => triggers?.start()).toThrow(/not a node-cron expression/);
  });
});
