import { describe, expect, it } from 'vitest';
import { OnnxModel } from '@linesight/vision';
import {
  connectionLimitFor,
  openFilesWarning,
  parseNice,
  plannedFleetProcesses,
  pollDelayMs,
  tinyModel,
} from './bench-rollout.ts';

describe('plannedFleetProcesses', () => {
  it('splits the simulated fleet so that each process stays under the open-files limit', () => {
    // (20,000 - 512) / 8 = 2,436 devices a process.
    expect(plannedFleetProcesses(1000, 20_000)).toBe(1);
    expect(plannedFleetProcesses(2436, 20_000)).toBe(1);
    expect(plannedFleetProcesses(2437, 20_000)).toBe(2);
    expect(plannedFleetProcesses(5000, 20_000)).toBe(3);
    expect(plannedFleetProcesses(10_000, 20_000)).toBe(5);
    expect(plannedFleetProcesses(10_000, undefined)).toBe(1);
  });

  it('refuses a fleet the cloud process itself cannot hold connections for, naming the fix', () => {
    expect(() => plannedFleetProcesses(20_000, 20_000)).toThrow(/ulimit -n 20512/);
  });
});

describe('openFilesWarning', () => {
  const rollout = (fleetPeakOpenFiles: number, fleetPeakOpenFilesPerDevice: number) => ({
    version: '1.1.0',
    fleetPeakOpenFiles,
    fleetPeakOpenFilesPerDevice,
  });

  it('says nothing while every fleet process stayed below 90 % of its limit', () => {
    expect(openFilesWarning([rollout(17_999, 5.4)], [3334, 3333, 3333], 20_000)).toBeNull();
    expect(openFilesWarning([rollout(19_000, 5.7)], [3334], undefined)).toBeNull();
  });

  it('names the peak, the per-device count and the --fleet-processes that leaves room', () => {
    const warning = openFilesWarning(
      [rollout(12_000, 3.6), rollout(19_990, 6)],
      [3334, 3333, 3333],
      20_000,
    );
    expect(warning).toMatch(/19990 open files of its limit 20000 during the 1\.1\.0 rollout/);
    expect(warning).toMatch(/6 per device, 3334 devices/);
    expect(warning).toMatch(/EMFILE/);
    // 8 a device planned (more than the 6 seen), plus one of room: (20,000 - 512) / 9 = 2,165.
    expect(warning).toMatch(/--fleet-processes 5 or more/);
  });
});

describe('parseNice', () => {
  it('takes 0-19 and refuses anything else with the range', () => {
    expect(parseNice('0')).toBe(0);
    expect(parseNice('19')).toBe(19);
    for (const bad of ['-1', '20', '2.5', 'x']) expect(() => parseNice(bad)).toThrow(/0 to 19/);
  });
});

describe('tinyModel', () => {
  it('scores the mean intensity of a 32x32 grey frame', async () => {
    const model = await OnnxModel.load(tinyModel());
    try {
      expect(model.contract.kind).toBe('bench-mean');
      const out = await model.run(new Float32Array(32 * 32).fill(0.25));
      expect(out.score).toBeCloseTo(0.25, 6);
    } finally {
      await model.close();
    }
  });
});

describe('connectionLimitFor', () => {
  it('keeps the default up to it and gives a larger fleet 5 % room for reconnects', () => {
    expect(connectionLimitFor(1000)).toBe(10_000);
    expect(connectionLimitFor(10_000)).toBe(10_500);
    expect(connectionLimitFor(20_001)).toBe(21_002);
  });
});

describe('pollDelayMs', () => {
  it('waits the minimum, or ten times a slow answer', () => {
    expect(pollDelayMs(250, 3)).toBe(250);
    expect(pollDelayMs(250, 80)).toBe(800);
    expect(pollDelayMs(1000, 400)).toBe(4000);
  });
});
