import { describe, expect, it } from 'vitest';
import { deviceCommand, edgeSettingsFrom } from './device-command.ts';

/** Parses `device edge-data` arguments the way the CLI does and returns its options. */
function edgeOptions(args: string[]) {
  const command = deviceCommand().commands.find((c) => c.name() === 'edge-data');
  if (command === undefined) throw new Error('no edge-data command');
  command.exitOverride().action(() => undefined);
  command.parse(['line-1', ...args], { from: 'user' });
  return command.opts<Parameters<typeof edgeSettingsFrom>[0]>();
}

describe('device edge-data', () => {
  it('shows when no setting is given and builds only the fields given', () => {
    expect(edgeSettingsFrom(edgeOptions([]))).toBeUndefined();
    expect(edgeSettingsFrom(edgeOptions(['--json']))).toBeUndefined();
    expect(
      edgeSettingsFrom(
        edgeOptions(['--window-sec', '30', '--random-share', '0.05', '--no-anomaly-map']),
      ),
    ).toEqual({ windowSec: 30, sampling: { randomShare: 0.05, anomalyMap: false } });
    expect(edgeSettingsFrom(edgeOptions(['--no-defects', '--max-side', '256']))).toEqual({
      sampling: { defects: false, maxSide: 256 },
    });
  });

  it('refuses a share outside 0-1', () => {
    expect(() => edgeOptions(['--random-share', '1.5'])).toThrow(/0 to 1/);
  });
});
