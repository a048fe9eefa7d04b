// The notifier against a real AF_UNIX datagram socket bound by the test, standing in for
// systemd's notification socket: what systemd would read is what the test reads.
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SystemdNotifyTransport, UnixDgramTransport, loadUnixDgram } from './notify-transport.ts';
import { SystemdNotifier, type FrameLoopProgress } from './systemd-notifier.ts';
import { eventually } from '@linesight/testkit/eventually';

interface Receiver {
  path: string;
  messages: string[];
  close(): void;
}

const dgram = loadUnixDgram();
const silent = pino({ level: 'silent' });
const systemdNotify = ['/usr/bin/systemd-notify', '/bin/systemd-notify'].find((p) => existsSync(p));

let dir: string;
const open: { close(): void }[] = [];

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'linesight-notify-'));
});

afterEach(async () => {
  for (const o of open.splice(0)) o.close();
  await rm(dir, { recursive: true, force: true });
});

/** Binds a datagram socket at a fresh path and records every message it reads. */
function receiver(): Receiver {
  if (!dgram) throw new Error('unix-dgram is not installed');
  const path = join(dir, `notify-${open.length}.sock`);
  const socket = createRequire(import.meta.url)('unix-dgram').createSocket('unix_dgram') as {
    on(e: string, l: (...a: unknown[]) => void): void;
    bind(p: string): void;
    close(): void;
  };
  const messages: string[] = [];
  socket.on('message', (buf) => messages.push((buf as Buffer).toString()));
  socket.on('error', () => undefined);
  socket.bind(path);
  const r = { path, messages, close: () => socket.close() };
  open.push(r);
  return r;
}

describe.skipIf(!dgram)('SystemdNotifier over a real datagram socket', () => {
  it('sends READY=1, pings WATCHDOG=1 while frames finish, withholds pings while the loop is stalled, then STOPPING=1', async () => {
    const r = receiver();
    const progress: FrameLoopProgress = { finished: 0, inFlight: 0 };
    const notifier = new SystemdNotifier({
      socketPath: r.path,
      watchdogUsec: '100000', // 100 ms: a ping every 50 ms
      pid: process.pid,
      progress: () => progress,
      logger: silent,
    });
    open.push(notifier);
    expect(notifier.transportKind).toBe('unix-dgram');
    expect(notifier.pingIntervalMs).toBe(50);
    // The frame loop moves: one more frame finished before each tick.
    const mover = setInterval(() => {
      progress.finished++;
      progress.inFlight = 1;
    }, 5);
    await notifier.ready('scoring frames');
    await eventually(() => r.messages.filter((m) => m === 'WATCHDOG=1').length >= 3, {
      what: 'three pings',
      intervalMs: 10,
    });
    expect(r.messages[0]).toBe('READY=1\nSTATUS=scoring frames');

    // Stalled: a frame in flight and none finishing. Pings stop; none arrives while withheld.
    clearInterval(mover);
    progress.inFlight = 1;
    await eventually(() => notifier.withheld >= 1, { what: 'a withheld ping', intervalMs: 10 });
    const pingsAtStall = notifier.pings;
    await eventually(() => notifier.withheld >= 4, { what: 'four withheld pings', intervalMs: 10 });
    expect(notifier.pings).toBe(pingsAtStall);
    expect(r.messages.filter((m) => m === 'WATCHDOG=1').length).toBe(pingsAtStall);

    // Moving again: pings resume.
    progress.finished++;
    await eventually(() => notifier.pings > pingsAtStall, {
      what: 'pings after the stall',
      intervalMs: 10,
    });
    await notifier.stopping();
    const pingsAtStop = notifier.pings;
    await eventually(() => r.messages.includes('STOPPING=1\nSTATUS=shutting down'), {
      what: 'STOPPING=1',
      intervalMs: 10,
    });
    expect(notifier.pings).toBe(pingsAtStop);
    notifier.close();
    notifier.close();
  });

  it('keeps pinging an idle loop (no frames in flight: a camera between frames is not a stall)', async () => {
    const r = receiver();
    const notifier = new SystemdNotifier({
      socketPath: r.path,
      watchdogUsec: '40000',
      pid: process.pid,
      progress: () => ({ finished: 7, inFlight: 0 }),
      logger: silent,
    });
    open.push(notifier);
    await notifier.ready('idle');
    await eventually(() => notifier.pings >= 5, { what: 'five pings', intervalMs: 10 });
    expect(notifier.withheld).toBe(0);
  });

  it('sends no pings for a watchdog meant for another process (WATCHDOG_PID), but still READY=1', async () => {
    const r = receiver();
    const notifier = new SystemdNotifier({
      socketPath: r.path,
      watchdogUsec: '20000',
      watchdogPid: String(process.pid + 1),
      pid: process.pid,
      progress: () => ({ finished: 0, inFlight: 0 }),
      logger: silent,
    });
    open.push(notifier);
    expect(notifier.pingIntervalMs).toBeUndefined();
    await notifier.ready('up');
    await eventually(() => r.messages.length >= 1, { what: 'READY=1', intervalMs: 10 });
    expect(r.messages).toEqual(['READY=1\nSTATUS=up']);
  });

  it('counts a send to a socket nobody listens on as a failure without throwing', async () => {
    const notifier = new SystemdNotifier({
      socketPath: join(dir, 'nobody.sock'),
      pid: process.pid,
      progress: () => ({ finished: 0, inFlight: 0 }),
      logger: silent,
    });
    open.push(notifier);
    await notifier.ready('up');
    expect(notifier.failures).toBe(1);
  });

  it('UnixDgramTransport sends each state as one datagram', async () => {
    const r = receiver();
    const t = new UnixDgramTransport(dgram!, r.path);
    open.push(t);
    await t.send('READY=1');
    await t.send('WATCHDOG=1');
    await eventually(() => r.messages.length >= 2, { what: 'two datagrams', intervalMs: 10 });
    expect(r.messages).toEqual(['READY=1', 'WATCHDOG=1']);
  });

  it.skipIf(systemdNotify === undefined)(
    'SystemdNotifyTransport reaches the same socket through the systemd-notify command, naming the main pid',
    async () => {
      const r = receiver();
      const t = new SystemdNotifyTransport(r.path, process.pid, systemdNotify);
      await t.send('READY=1\nSTATUS=from a child');
      const msg = await eventually(() => r.messages[0], {
        what: 'a datagram from systemd-notify',
        intervalMs: 10,
      });
      const fields = msg.split('\n');
      expect(fields).toContain('READY=1');
      expect(fields).toContain('STATUS=from a child');
      expect(fields).toContain(`MAINPID=${process.pid}`);
    },
  );
});

describe('SystemdNotifier without systemd', () => {
  it('does nothing when NOTIFY_SOCKET is not set', async () => {
    const notifier = new SystemdNotifier({
      socketPath: undefined,
      watchdogUsec: '1000000',
      pid: process.pid,
      progress: () => ({ finished: 0, inFlight: 0 }),
      logger: silent,
    });
    expect(notifier.enabled).toBe(false);
    expect(notifier.pingIntervalMs).toBeUndefined();
    await notifier.ready('up');
    await notifier.stopping();
    notifier.close();
    expect(notifier.failures).toBe(0);
  });
});
