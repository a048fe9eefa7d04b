import { describe, expect, it } from 'vitest';
import { fleetProcessArgs, parseFleetProcessArgs } from './fleet-process.ts';

const soak = { name: 'soak-fleet', defaultIdPrefix: 'soak', fps: { default: 2 } };

describe('fleet process arguments', () => {
  it('carry a camera fleet’s frame rate there and back, with its default when left out', () => {
    const settings = {
      cloudUrl: 'http://127.0.0.1:1234',
      devices: 10,
      dataDir: '/tmp/s',
      idPrefix: 'soak2',
      fps: 5,
    };
    expect(parseFleetProcessArgs(fleetProcessArgs(settings), soak)).toEqual(settings);
    expect(
      parseFleetProcessArgs(['--cloud', 'http://x', '--devices', '1', '--data-dir', '/d'], soak),
    ).toEqual({ cloudUrl: 'http://x', devices: 1, dataDir: '/d', idPrefix: 'soak', fps: 2 });
  });

  it('refuse a bad frame rate, and --fps where the process takes none', () => {
    const base = ['--cloud', 'http://x', '--devices', '1', '--data-dir', '/d'];
    expect(() => parseFleetProcessArgs([...base, '--fps', '0'], soak)).toThrow(/--fps/);
    expect(() => parseFleetProcessArgs([], soak)).toThrow(/usage: soak-fleet .*\[--fps F\]/);
    expect(() =>
      parseFleetProcessArgs([...base, '--fps', '5'], { name: 'x', defaultIdPrefix: 'x' }),
    ).toThrow();
  });
});
