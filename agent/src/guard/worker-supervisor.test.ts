import { EventEmitter } from 'node:events';
import type { ChildProcess } from 'node:child_process';
import { getPriority } from 'node:os';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { FrameResult } from '@linesight/protocol';
import type { GuardMessage } from './guard-protocol.ts';
import { VerdictGuard } from './verdict-guard.ts';
import { WorkerSupervisor } from './worker-supervisor.ts';

/** A stand-in worker process: records what it was sent, exits when told to. */
class FakeChild extends EventEmitter {
  static nextPid = 1000;
  readonly pid = FakeChild.nextPid++;
  connected = true;
  exitCode: number | null = null;
  signalCode: NodeJS.Signals | null = null;
  readonly sent: GuardMessage[] = [];
  readonly signals: string[] = [];

  send(message: GuardMessage): boolean {
    this.sent.push(message);
    return true;
  }

  kill(signal: NodeJS.Signals = 'SIGTERM'): boolean {
    this.signals.push(signal);
    return true;
  }

  exit(signal: NodeJS.Signals | null, code: number | null = null): void {
    this.connected = false;
    this.signalCode = signal;
    this.exitCode = code;
    this.emit('exit', code, signal);
  }

  say(message: unknown): void {
    this.emit('message', message);
  }
}

function setup(extra: Partial<ConstructorParameters<typeof WorkerSupervisor>[0]> = {}) {
  const line: FrameResult[] = [];
  const children: FakeChild[] = [];
  const guard: VerdictGuard = new VerdictGuard({
    deviceId: 'dev-1',
    budgetMs: 800,
    publish: (r) => line.push(r),
    send: (f) => supervisor.send(f),
    onCameraError: () => undefined,
    handoverMax: 1000,
    maxBehind: 50,
    recordLive: (r): boolean => supervisor.recordLive(r),
    logger: pino({ level: 'silent' }),
  });
  const errors: string[] = [];
  const logger = pino({ level: 'silent' });
  vi.spyOn(logger, 'error').mockImplementation(((_: unknown, msg: string) => {
    errors.push(msg);
  }) as never);
  const supervisor = new WorkerSupervisor({
    launch: { modulePath: 'worker.js', args: [] },
    guard,
    logger,
    backoff: { initialMs: 1000, maxMs: 8000 },
    stableAfterMs: 30_000,
    crashLoopExits: 4,
    recordBatch: 2,
    fork: () => {
      const child = new FakeChild();
      children.push(child);
      return child as unknown as ChildProcess;
    },
    ...extra,
  });
  return { guard, supervisor, children, line, errors, logger };
}

beforeEach(() => {
  vi.useFakeTimers({ now: new Date('2026-11-27T04:00:00Z') });
});

afterEach(() => {
  vi.useRealTimers();
});

describe('WorkerSupervisor', () => {
  it('lowers each worker it starts below its own priority, and goes on when it may not', () => {
    const reniced: [number, number][] = [];
    const { supervisor, children } = setup({
      workerNiceIncrement: 5,
      setPriority: (pid, priority) => {
        reniced.push([pid, priority]);
        if (reniced.length === 2) throw new Error('EACCES');
      },
    });
    supervisor.start();
    const expected = Math.min(19, getPriority() + 5);
    expect(reniced).toEqual([[children[0]!.pid, expected]]);
    children[0]!.exit('SIGKILL');
    vi.advanceTimersByTime(0);
    // The second could not be lowered: it runs anyway.
    expect(children).toHaveLength(2);
    expect(reniced).toEqual([
      [children[0]!.pid, expected],
      [children[1]!.pid, expected],
    ]);
  });

  it('leaves the worker at its own priority by default', () => {
    const reniced: number[] = [];
    const { supervisor } = setup({ setPriority: (pid) => reniced.push(pid) });
    supervisor.start();
    expect(reniced).toEqual([]);
  });

  it('sends frames only once the worker is ready, then relays its results to the line', () => {
    const { guard, supervisor, children, line } = setup();
    supervisor.start();
    const child = children[0]!;
    guard.frame({ seq: 0, capturedAt: new Date(), image: Buffer.from([1, 2]) });
    expect(child.sent).toEqual([]);
    expect(line[0]!.reason).toBe(`agent-restarting: worker ${child.pid} starting`);
    child.say({ type: 'ready', pid: child.pid });
    expect(supervisor.stats.workerPid).toBe(child.pid);
    guard.frame({ seq: 1, capturedAt: new Date(), image: Buffer.from([3]) });
    expect(child.sent.map((m) => m.type)).toEqual(['record', 'frame']);
    child.say({ type: 'result', result: { ...line[0]!, seq: 1, reason: 'no model loaded' } });
    expect(line.map((r) => r.seq)).toEqual([0, 1]);
    child.say({ type: 'nonsense' });
    expect(line).toHaveLength(2);
  });

  it('restarts at once after one exit, backs off on repeated quick exits and reports a crash loop', () => {
    const { supervisor, children, errors } = setup();
    supervisor.start();
    children[0]!.exit('SIGKILL');
    vi.advanceTimersByTime(0);
    expect(children).toHaveLength(2);
    expect(supervisor.stats.restarts).toBe(1);
    // Exits before running stably: 1 s (x0.5-1 jitter), then 2 s, then 4 s...
    children[1]!.exit(null, 1);
    expect(children).toHaveLength(2);
    vi.advanceTimersByTime(1000);
    expect(children).toHaveLength(3);
    children[2]!.exit(null, 1);
    vi.advanceTimersByTime(999);
    expect(children).toHaveLength(3);
    vi.advanceTimersByTime(1001);
    expect(children).toHaveLength(4);
    expect(supervisor.stats.crashLoop).toBe(false);
    children[3]!.exit(null, 1);
    expect(supervisor.stats.crashLoop).toBe(true);
    expect(errors).toContain('guard worker crash loop: it keeps exiting before it runs stably');
    vi.advanceTimersByTime(4000);
    // A worker that ran stably ends the loop: its exit restarts the next one at once.
    const stable = children[4]!;
    stable.say({ type: 'ready', pid: stable.pid });
    vi.advanceTimersByTime(30_000);
    stable.exit('SIGKILL');
    vi.advanceTimersByTime(0);
    expect(children).toHaveLength(6);
    expect(supervisor.stats.crashLoop).toBe(false);
    expect(supervisor.stats.quickExits).toBe(0);
  });

  it("hands the guard's unknowns to the next worker in batches and keeps what it could not record", () => {
    const { guard, supervisor, children } = setup();
    supervisor.start();
    for (let seq = 0; seq < 5; seq++)
      guard.frame({ seq, capturedAt: new Date(), image: Buffer.from([seq]) });
    const child = children[0]!;
    child.say({ type: 'ready', pid: child.pid });
    const records = child.sent.filter((m) => m.type === 'record');
    expect(records.map((m) => m.entries.map((e) => e.result.seq))).toEqual([[0, 1], [2, 3], [4]]);
    expect(guard.handoverSize).toBe(0);
    child.say({ type: 'recorded', count: 1, skipped: 1, unrecorded: [] });
    child.say({ type: 'recorded', count: 0, skipped: 0, unrecorded: records[1]!.entries });
    expect(supervisor.stats.recorded).toBe(1);
    expect(supervisor.stats.recordSkipped).toBe(1);
    expect(guard.takeHandover().map((e) => e.result.seq)).toEqual([2, 3]);
  });

  it('close stops the worker with SIGTERM and starts no other', async () => {
    const { supervisor, children, line, guard } = setup();
    supervisor.start();
    const child = children[0]!;
    child.say({ type: 'ready', pid: child.pid });
    guard.frame({ seq: 0, capturedAt: new Date(), image: Buffer.from([0]) });
    const closed = supervisor.close();
    expect(child.signals).toEqual(['SIGTERM']);
    child.exit(null, 0);
    await closed;
    expect(line.map((r) => r.reason)).toEqual([
      `agent-restarting: worker ${child.pid} exited (code 0)`,
    ]);
    vi.advanceTimersByTime(60_000);
    expect(children).toHaveLength(1);
  });
});
