import { Writable } from 'node:stream';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import type { DeviceEvent } from '@linesight/protocol';
import { DeviceEventLog } from './device-event-log.ts';

const logs: DeviceEventLog[] = [];

function capture(): { lines: Record<string, unknown>[]; log: DeviceEventLog } {
  const lines: Record<string, unknown>[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      lines.push(JSON.parse(chunk.toString()) as Record<string, unknown>);
      done();
    },
  });
  // A window longer than the test: only flush() and close() end it.
  const log = new DeviceEventLog(pino({ level: 'info' }, stream), {
    windowMs: 3_600_000,
    fullPerWindow: 2,
    exampleDevices: 3,
  });
  logs.push(log);
  return { lines, log };
}

function event(
  deviceId: string,
  code = 'ERR_AGENT_DOWNLOAD',
  level: DeviceEvent['level'] = 'error',
): DeviceEvent {
  return {
    schema: 'linesight.event/v1',
    deviceId,
    at: new Date().toISOString(),
    level,
    type: 'model.refused',
    code,
    message: `${deviceId}: refused`,
  };
}

afterEach(() => {
  for (const l of logs.splice(0)) l.close();
});

describe('DeviceEventLog', () => {
  it('writes the first events of a kind in full, then one counted line per kind and window', async () => {
    const { lines, log } = capture();
    for (let i = 0; i < 1000; i++) log.write(event(`d-${i % 400}`));
    log.write(event('other', 'ERR_AGENT_STALLED', 'warn'));
    await new Promise((r) => setImmediate(r));
    expect(lines.map((l) => l.msg)).toEqual([
      'device event: d-0: refused',
      'device event: d-1: refused',
      'device event: other: refused',
    ]);
    expect(lines[0]).toMatchObject({ level: 50, deviceId: 'd-0', eventType: 'model.refused' });
    expect(lines[2]).toMatchObject({ level: 40, code: 'ERR_AGENT_STALLED' });
    log.flush();
    await new Promise((r) => setImmediate(r));
    expect(lines.slice(3)).toEqual([
      expect.objectContaining({
        level: 50,
        eventType: 'model.refused',
        code: 'ERR_AGENT_DOWNLOAD',
        folded: 998,
        devices: 400,
        exampleDevices: ['d-2', 'd-3', 'd-4'],
        msg: 'device events folded: 998 more model.refused ERR_AGENT_DOWNLOAD from 400 devices (the first 2 of the window were logged in full)',
      }),
    ]);
    // A new window writes in full again; an empty one writes nothing.
    log.flush();
    log.write(event('d-7'));
    await new Promise((r) => setImmediate(r));
    expect(lines).toHaveLength(5);
    expect(lines[4]).toMatchObject({ deviceId: 'd-7', msg: 'device event: d-7: refused' });
  });
});
