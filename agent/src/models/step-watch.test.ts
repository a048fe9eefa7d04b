import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { Manifest, ReportedError } from '@linesight/protocol';
import { slowStepNotice, watchStep, type SlowStep } from './step-watch.ts';

beforeEach(() => {
  vi.useFakeTimers();
});

afterEach(() => {
  vi.useRealTimers();
});

describe('watchStep', () => {
  it('says nothing about a step that ends within its limit', async () => {
    const seen: SlowStep[] = [];
    const result = watchStep(
      'fsync',
      1000,
      (s) => seen.push(s),
      async () => 7,
      Date.now,
    );
    await vi.advanceTimersByTimeAsync(0);
    expect(await result).toBe(7);
    await vi.advanceTimersByTimeAsync(5000);
    expect(seen).toEqual([]);
  });

  it('reports a long step after its limit, after each further limit, and once when it ends, with its error', async () => {
    const seen: SlowStep[] = [];
    let fail: (err: Error) => void = () => undefined;
    const work = new Promise<never>((_, reject) => (fail = reject));
    const result = watchStep(
      'fsync of a.onnx',
      1000,
      (s) => seen.push(s),
      () => work,
      Date.now,
    );
    result.catch(() => undefined);
    await vi.advanceTimersByTimeAsync(999);
    expect(seen).toEqual([]);
    await vi.advanceTimersByTimeAsync(1);
    expect(seen).toEqual([{ step: 'fsync of a.onnx', waitedMs: 1000, limitMs: 1000, done: false }]);
    await vi.advanceTimersByTimeAsync(1500);
    expect(seen.map((s) => [s.waitedMs, s.done])).toEqual([
      [1000, false],
      [2000, false],
    ]);
    fail(new Error('EIO'));
    await expect(result).rejects.toThrow('EIO');
    expect(seen.at(-1)).toEqual({
      step: 'fsync of a.onnx',
      waitedMs: 2500,
      limitMs: 1000,
      done: true,
    });
    await vi.advanceTimersByTimeAsync(5000);
    expect(seen).toHaveLength(3);
  });

  it('says nothing before the full limit by its clock when the timer fires early', async () => {
    const seen: SlowStep[] = [];
    // After the start the clock falls 3 ms behind the timers (as when the event loop measured
    // a timer from the time it cached at the start of its turn).
    let lagMs = 0;
    const clock = () => Date.now() - lagMs;
    const work = new Promise<never>(() => undefined);
    void watchStep(
      'fsync',
      20,
      (s) => seen.push(s),
      () => work,
      clock,
    );
    lagMs = 3;
    await vi.advanceTimersByTimeAsync(20);
    expect(seen).toEqual([]);
    await vi.advanceTimersByTimeAsync(3);
    expect(seen).toEqual([{ step: 'fsync', waitedMs: 20, limitMs: 20, done: false }]);
  });
});

describe('slowStepNotice', () => {
  const manifest = { name: 'm', version: '1.2.0', sha256: 'ab'.repeat(32) } as Manifest;
  const step = 'fsync of the downloaded artifact of m@1.2.0';
  const at = new Date('2026-11-27T10:00:00Z');

  it('reports a waiting step as a warn event and a transient lastError with the version', () => {
    const notice = slowStepNotice(
      manifest,
      { step, waitedMs: 31_400, limitMs: 30_000, done: false },
      undefined,
      at,
    );
    const message = `${step} has waited 31 s (limit 30 s); still waiting`;
    expect(notice.event).toEqual({
      level: 'warn',
      type: 'model.step_stalled',
      message,
      code: 'ERR_AGENT_STALLED',
    });
    expect(notice.lastError).toEqual({
      code: 'ERR_AGENT_STALLED',
      message,
      at: at.toISOString(),
      model: { name: 'm', version: '1.2.0', sha256: 'ab'.repeat(32) },
    });
  });

  it('clears only a stalled lastError when the step ends; a real error stays', () => {
    const ended: SlowStep = { step, waitedMs: 92_000, limitMs: 30_000, done: true };
    const stalled = slowStepNotice(manifest, { ...ended, done: false }, undefined, at)
      .lastError as ReportedError;
    const finished = slowStepNotice(manifest, ended, stalled);
    expect(finished.event).toEqual({
      level: 'info',
      type: 'model.step_finished',
      message: `${step} finished after 92 s (limit 30 s)`,
    });
    expect(finished.lastError).toBe('clear');
    const refused: ReportedError = {
      code: 'ERR_AGENT_DISK_FULL',
      message: 'full',
      at: at.toISOString(),
    };
    expect(slowStepNotice(manifest, ended, refused).lastError).toBe('keep');
  });
});
