import { describe, expect, it } from 'vitest';
import {
  allDevicesFilter,
  deviceTopic,
  isValidDeviceId,
  parseDeviceTopic,
  devicePrefix,
} from './topics.ts';

describe('topics', () => {
  it('builds device topics under the versioned root', () => {
    expect(deviceTopic('line-1.cam_2', 'desired')).toBe(
      'linesight/v1/devices/line-1.cam_2/desired',
    );
    expect(devicePrefix('d1')).toBe('linesight/v1/devices/d1');
    expect(allDevicesFilter('telemetry')).toBe('linesight/v1/devices/+/telemetry');
  });

  it('refuses ids that would break topic isolation', () => {
    for (const bad of ['', 'a/b', '+', '#', 'a+', '-lead', 'x'.repeat(65), 'sp ace']) {
      expect(isValidDeviceId(bad)).toBe(false);
      expect(() => deviceTopic(bad, 'reported')).toThrow(/invalid device id/);
    }
  });

  it('parses its own topics and nothing else', () => {
    expect(parseDeviceTopic('linesight/v1/devices/d1/results')).toEqual({
      deviceId: 'd1',
      channel: 'results',
    });
    expect(parseDeviceTopic('linesight/v2/devices/d1/results')).toBeUndefined();
    expect(parseDeviceTopic('linesight/v1/devices/d1/bogus')).toBeUndefined();
    expect(parseDeviceTopic('linesight/v1/devices/d1/results/x')).toBeUndefined();
    expect(parseDeviceTopic('linesight/v1/devices/+/results')).toBeUndefined();
  });
});
