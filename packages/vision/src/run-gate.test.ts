import { describe, expect, it } from 'vitest';
import { isLinesightError } from '@linesight/protocol';
import { RunGate } from './run-gate.ts';

function deferred<T>() {
  let resolve!: (value: T) => void;
  let reject!: (err: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

describe('RunGate', () => {
  it('is open until closing begins, then refuses runs with ERR_MODEL_LOAD', async () => {
    const gate = new RunGate();
    expect(gate.closed).toBe(false);
    expect(() => gate.checkOpen()).not.toThrow();
    const closing = gate.close(async () => undefined);
    expect(gate.closed).toBe(true);
    let caught: unknown;
    try {
      gate.checkOpen();
    } catch (err) {
      caught = err;
    }
    expect(isLinesightError(caught, 'ERR_MODEL_LOAD')).toBe(true);
    expect((caught as Error).message).toMatch(/model is closed/);
    await closing;
  });

  it('passes a run result or failure through', async () => {
    const gate = new RunGate();
    await expect(gate.track(Promise.resolve(42))).resolves.toBe(42);
    await expect(gate.track(Promise.reject(new Error('boom')))).rejects.toThrow('boom');
  });

  it('releases only after every tracked run settled, a failed one included', async () => {
    const gate = new RunGate();
    const ok = deferred<number>();
    const bad = deferred<number>();
    const tracked = [gate.track(ok.promise), gate.track(bad.promise).catch(() => 'failed')];
    const events: string[] = [];
    const closing = gate.close(async () => {
      events.push('released');
    });
    await new Promise((r) => setImmediate(r));
    expect(events).toEqual([]);
    bad.reject(new Error('boom'));
    await new Promise((r) => setImmediate(r));
    expect(events).toEqual([]);
    ok.resolve(1);
    await closing;
    expect(events).toEqual(['released']);
    expect(await Promise.all(tracked)).toEqual([1, 'failed']);
  });

  it('does not wait for runs that settled before closing', async () => {
    const gate = new RunGate();
    const hung = deferred<number>();
    const run = gate.track(hung.promise);
    hung.resolve(7);
    await run;
    let released = false;
    // Were the settled run still tracked, this would still resolve; a hung one would not:
    // check the set is emptied by closing with a release that must run.
    await gate.close(async () => {
      released = true;
    });
    expect(released).toBe(true);
  });

  it('releases once, however often it is closed', async () => {
    const gate = new RunGate();
    let releases = 0;
    const release = async () => {
      releases++;
    };
    const first = gate.close(release);
    const second = gate.close(release);
    expect(second).toBe(first);
    await Promise.all([first, second, gate.close(release)]);
    expect(releases).toBe(1);
  });
});
