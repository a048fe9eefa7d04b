import { describe, expect, it } from 'vitest';
import { fleetWorkerArgs, parseFleetWorkerArgs } from './rollout-fleet-worker.ts';

describe('fleet worker arguments', () => {
  it('carry the settings there and back', () => {
    const settings = {
      cloudUrl: 'http://127.0.0.1:1234',
      devices: 1000,
      dataDir: '/tmp/f',
      idPrefix: 'bench2',
    };
    expect(parseFleetWorkerArgs(fleetWorkerArgs(settings))).toEqual(settings);
  });

  it('refuse missing or malformed settings', () => {
    expect(() => parseFleetWorkerArgs(['--cloud', 'http://x'])).toThrow(/usage/);
    expect(() =>
      parseFleetWorkerArgs(['--cloud', 'http://x', '--devices', '0', '--data-dir', '/d']),
    ).toThrow(/positive integer/);
    expect(() => parseFleetWorkerArgs(['--token', 'secret'])).toThrow();
  });
});
