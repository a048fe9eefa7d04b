import type { ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { describe, expect, it } from 'vitest';
import { fleetInbox, fleetProcessArgs, parseFleetProcessArgs } from './fleet-process.ts';

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

describe('fleetInbox', () => {
  type M = { type: 'ready' } | { type: 'reached'; v: string } | { type: 'error'; message: string };
  // A stand-in for the forked process: only its 'message' and 'exit' events are read.
  const child = () => new EventEmitter() as unknown as ChildProcess;

  it('gives each message to the wait it matches, keeping unmatched ones when asked to', async () => {
    const c = child();
    const inbox = fleetInbox<M>(c, { keepUnmatched: true });
    c.emit('message', { type: 'reached', v: '1' });
    const ready = inbox.next((m) => m.type === 'ready', 1000);
    c.emit('message', { type: 'ready' });
    expect(await ready).toEqual({ type: 'ready' });
    expect(await inbox.next((m) => m.type === 'reached', 1000)).toEqual({
      type: 'reached',
      v: '1',
    });
  });

  it('drops unmatched messages otherwise, so a later wait gets only a new answer', async () => {
    const c = child();
    const inbox = fleetInbox<M>(c, { keepUnmatched: false });
    c.emit('message', { type: 'ready' });
    await expect(inbox.next((m) => m.type === 'ready', 10)).rejects.toThrow(/in time/);
  });

  it('fails every wait, then and after, on an error message or an exit', async () => {
    const c = child();
    const inbox = fleetInbox<M>(c, { keepUnmatched: true });
    const waiting = inbox.next((m) => m.type === 'ready', 60_000);
    c.emit('message', { type: 'error', message: 'no cloud' });
    await expect(waiting).rejects.toThrow('simulated fleet: no cloud');
    c.emit('exit', 1);
    await expect(inbox.next(() => true, 60_000)).rejects.toThrow('simulated fleet: no cloud');
    const other = child();
    const exited = fleetInbox<M>(other, { keepUnmatched: false });
    other.emit('exit', 3);
    await expect(exited.next(() => true, 60_000)).rejects.toThrow('exited (3)');
  });
});
