import { describe, expect, it } from 'vitest';
import { deviceTopic } from '@linesight/protocol';
import { canPublish, canSubscribe } from './acl.ts';

const d1 = { kind: 'device', deviceId: 'd1' } as const;

describe('broker ACL', () => {
  it('lets a device publish only to its own publish channels', () => {
    expect(canPublish(d1, deviceTopic('d1', 'reported'))).toBe(true);
    expect(canPublish(d1, deviceTopic('d1', 'results'))).toBe(true);
    for (const channel of ['verdicts', 'windows', 'event-log', 'samples'] as const) {
      expect(canPublish(d1, deviceTopic('d1', channel))).toBe(true);
      expect(canPublish(d1, deviceTopic('d2', channel))).toBe(false);
    }
    expect(canPublish(d1, deviceTopic('d1', 'desired'))).toBe(false);
    expect(canPublish(d1, deviceTopic('d2', 'reported'))).toBe(false);
    expect(canPublish(d1, 'linesight/v1/devices/d1/reported/extra')).toBe(false);
    expect(canPublish(d1, 'other/topic')).toBe(false);
  });

  it('lets a device subscribe only to its own desired state, without wildcards', () => {
    expect(canSubscribe(d1, deviceTopic('d1', 'desired'))).toBe(true);
    expect(canSubscribe(d1, deviceTopic('d2', 'desired'))).toBe(false);
    expect(canSubscribe(d1, 'linesight/v1/devices/+/desired')).toBe(false);
    expect(canSubscribe(d1, 'linesight/v1/devices/d1/#')).toBe(false);
    expect(canSubscribe(d1, '#')).toBe(false);
  });

  it('keeps the service and admin inside the Linesight root', () => {
    expect(canPublish({ kind: 'service' }, deviceTopic('d2', 'desired'))).toBe(true);
    expect(canSubscribe({ kind: 'admin' }, 'linesight/v1/devices/+/results')).toBe(true);
    expect(canSubscribe({ kind: 'admin' }, '#')).toBe(false);
  });
});
