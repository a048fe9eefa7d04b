import { PassThrough } from 'node:stream';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { logDestination } from './log-output.ts';

describe('logDestination', () => {
  it('is pino JSON unless --log-pretty was given', () => {
    expect(logDestination(undefined)).toBeUndefined();
    expect(logDestination(false)).toBeUndefined();
  });

  it('writes one readable line per entry, keeping every field and dropping pid and hostname', () => {
    const out = new PassThrough();
    let text = '';
    out.on('data', (chunk: Buffer) => (text += chunk.toString('utf8')));
    const destination = logDestination(true, out);
    if (destination === undefined) throw new Error('expected a pretty destination');
    const logger = pino({ level: 'info', base: { app: 'agent', deviceId: 'line-7' } }, destination);
    logger.warn({ model: 'tile@1.2.0', code: 'ERR_AGENT_DISK_FULL' }, 'update refused');
    logger.debug('below the level');
    const lines = text.trim().split('\n');
    expect(lines[0]).toMatch(/^\[\d\d:\d\d:\d\d\.\d{3}\] WARN: update refused$/);
    expect(text).not.toMatch(/^\{/m);
    expect(text).toContain('deviceId: "line-7"');
    expect(text).toContain('model: "tile@1.2.0"');
    expect(text).toContain('code: "ERR_AGENT_DISK_FULL"');
    expect(text).not.toContain('hostname');
    expect(text).not.toContain('below the level');
  });
});
