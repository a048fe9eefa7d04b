import { describe, expect, it } from 'vitest';
import type { ReportedState } from '@linesight/protocol';
import { refusal, runningOf, runsVersion, type DeviceState } from './device-progress.ts';

const SINCE_MS = Date.parse('2026-01-01T00:10:00Z');

/** A device reporting `model`, and optionally an error on m@2.0.0 (or `on`) at `atMs`. */
function device(
  model: { name: string; version: string } | null,
  error?: { code?: string; atMs?: number; on?: { name: string; version: string } },
): DeviceState {
  const reported: ReportedState = {
    schema: 'linesight.reported/v1',
    deviceId: 'd1',
    phase: 'running',
    desiredRevision: 1,
    model,
    frames: { captured: 0, scored: 0, unknown: 0, droppedOverload: 0, defects: 0 },
    framesByVersion: {},
    agentVersion: 'test',
    updatedAt: new Date(SINCE_MS).toISOString(),
    ...(error === undefined
      ? {}
      : {
          lastError: {
            code: error.code ?? 'ERR_AGENT_MODEL_VERIFY',
            message: 'hash mismatch',
            at: new Date(error.atMs ?? SINCE_MS).toISOString(),
            model: error.on ?? { name: 'm', version: '2.0.0' },
          },
        }),
  };
  return {
    id: 'd1',
    labels: {},
    createdAt: new Date(0).toISOString(),
    online: true,
    lastSeen: null,
    reported,
    telemetry: null,
  };
}

describe('runsVersion', () => {
  it('needs both the name and the version to match', () => {
    expect(runsVersion(device({ name: 'm', version: '2.0.0' }), 'm', '2.0.0')).toBe(true);
    expect(runsVersion(device({ name: 'm', version: '1.0.0' }), 'm', '2.0.0')).toBe(false);
    expect(runsVersion(device({ name: 'other', version: '2.0.0' }), 'm', '2.0.0')).toBe(false);
    expect(runsVersion(device(null), 'm', '2.0.0')).toBe(false);
    expect(runsVersion({ ...device(null), reported: null }, 'm', '2.0.0')).toBe(false);
    expect(runsVersion(undefined, 'm', '2.0.0')).toBe(false);
  });
});

describe('refusal', () => {
  const running = { name: 'm', version: '1.0.0' };

  it('is the code and message of an error on the version since the given time', () => {
    expect(refusal(device(running, {}), 'm', '2.0.0', SINCE_MS)).toBe(
      'ERR_AGENT_MODEL_VERIFY: hash mismatch',
    );
  });

  it('ignores an error on another name or version, and a device without one', () => {
    const on = (name: string, version: string) => device(running, { on: { name, version } });
    expect(refusal(on('m', '3.0.0'), 'm', '2.0.0', SINCE_MS)).toBeUndefined();
    expect(refusal(on('other', '2.0.0'), 'm', '2.0.0', SINCE_MS)).toBeUndefined();
    expect(refusal(device(running), 'm', '2.0.0', SINCE_MS)).toBeUndefined();
    // An error about no model at all (a camera failure).
    const camera = device(running);
    camera.reported!.lastError = {
      code: 'ERR_CAMERA',
      message: 'no frames',
      at: '2026-01-01T00:10:00Z',
    };
    expect(refusal(camera, 'm', '2.0.0', SINCE_MS)).toBeUndefined();
    expect(refusal(undefined, 'm', '2.0.0', SINCE_MS)).toBeUndefined();
  });

  it('does not count a failed download, which the agent retries, nor a stalled step, but counts other codes', () => {
    expect(
      refusal(device(running, { code: 'ERR_AGENT_DOWNLOAD' }), 'm', '2.0.0', SINCE_MS),
    ).toBeUndefined();
    // A slow fsync goes on when the disk answers: the device is late, not refusing.
    expect(
      refusal(device(running, { code: 'ERR_AGENT_STALLED' }), 'm', '2.0.0', SINCE_MS),
    ).toBeUndefined();
    expect(refusal(device(running, { code: 'ERR_AGENT_CRASH_LOOP' }), 'm', '2.0.0', SINCE_MS)).toBe(
      'ERR_AGENT_CRASH_LOOP: hash mismatch',
    );
  });

  it('allows a device clock up to five seconds behind, and no more', () => {
    const at = (atMs: number) => refusal(device(running, { atMs }), 'm', '2.0.0', SINCE_MS);
    expect(at(SINCE_MS - 5_000)).toBeDefined();
    expect(at(SINCE_MS - 5_001)).toBeUndefined();
    expect(at(SINCE_MS + 60_000)).toBeDefined();
  });
});

describe('runningOf', () => {
  it('names the reported model as name@version, or null without one', () => {
    expect(runningOf(device({ name: 'm', version: '1.0.0' }))).toBe('m@1.0.0');
    expect(runningOf(device(null))).toBeNull();
    expect(runningOf(undefined)).toBeNull();
  });
});
