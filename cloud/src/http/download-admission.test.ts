import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { isLinesightError } from '@linesight/protocol';
import { BusyError, DownloadAdmission, holdSampleWeight } from './download-admission.ts';

function setup(
  max: number,
  options: { maxRetryAfterSec?: number; maxWaiting?: number; maxHoldSampleSec?: number } = {},
) {
  const lines: Record<string, unknown>[] = [];
  let now = 1_000_000;
  const admission = new DownloadAdmission({
    max,
    logger: pino({ level: 'info' }, { write: (l) => lines.push(JSON.parse(l) as never) }),
    nowMs: () => now,
    ...options,
  });
  return {
    admission,
    lines,
    advance: (ms: number) => {
      now += ms;
    },
  };
}

function refusal(admission: DownloadAdmission, caller: string): BusyError {
  try {
    admission.admit(caller);
  } catch (err) {
    if (err instanceof BusyError) return err;
    throw err;
  }
  throw new Error(`${caller} was admitted`);
}

describe('DownloadAdmission', () => {
  it('admits up to max at once and refuses the next with ERR_CLOUD_BUSY, until a slot is released', () => {
    const { admission } = setup(2);
    const a = admission.admit('device:a');
    admission.admit('device:b');
    const busy = refusal(admission, 'device:c');
    expect(isLinesightError(busy, 'ERR_CLOUD_BUSY')).toBe(true);
    expect(busy.details).toMatchObject({ inProgress: 2, max: 2, waiting: 1 });
    expect(busy.message).toMatch(/artifactDownloadConcurrency/);
    a();
    // Released twice (finish, then close) frees one slot only.
    a();
    admission.admit('device:c');
    expect(admission.stats).toMatchObject({ inUse: 2, deferred: 1, waiting: 0 });
    refusal(admission, 'device:d');
  });

  it('asks later callers to wait longer: Retry-After grows with the callers waiting', () => {
    const { admission } = setup(2);
    admission.admit('device:x');
    admission.admit('device:y');
    const waits = Array.from(
      { length: 200 },
      (_, i) => refusal(admission, `device:${i}`).retryAfterSec,
    );
    expect(waits[0]).toBe(1);
    for (let i = 1; i < waits.length; i++)
      expect(waits[i]).toBeGreaterThanOrEqual(waits[i - 1] as number);
    // 200 waiting, two slots, 0.1 s a download before any was measured: 10 s.
    expect(waits[199]).toBe(10);
    // A caller asking again keeps its place in the count instead of adding to it.
    expect(refusal(admission, 'device:0').details).toMatchObject({ waiting: 200 });
  });

  it('estimates the slot time from finished downloads', () => {
    const { admission, advance } = setup(1);
    for (let i = 0; i < 60; i++) {
      const release = admission.admit(`device:${i}`);
      advance(4000);
      release();
    }
    expect(admission.stats.averageHoldSec).toBeGreaterThan(3.9);
    admission.admit('device:holder');
    for (let i = 0; i < 9; i++) refusal(admission, `device:w${i}`);
    // The tenth caller waiting behind one slot of about 4 s.
    expect(refusal(admission, 'device:w9').retryAfterSec).toBe(40);
  });

  it("forgets a burst's slot time once the burst is over", () => {
    const { admission, advance } = setup(256);
    // A first burst: every slot held 1 s (the event loop's lag, not the 482 bytes).
    const burst = Array.from({ length: 256 }, (_, i) => admission.admit(`device:b${i}`));
    advance(1000);
    for (const release of burst) release();
    expect(admission.stats.averageHoldSec).toBeGreaterThan(0.9);
    // The refused devices sleep on their Retry-After; a minute later downloads take 50 ms.
    advance(60_000);
    for (const id of ['a', 'b']) {
      const release = admission.admit(`device:${id}`);
      advance(50);
      release();
    }
    expect(admission.stats.averageHoldSec).toBeLessThan(0.1);
    const held = Array.from({ length: 256 }, (_, i) => admission.admit(`device:h${i}`));
    for (let i = 0; i < 1023; i++) refusal(admission, `device:w${i}`);
    // 1,024 waiting behind 256 slots of 50-odd ms: 1 s (the burst's 1 s would say 4 s).
    expect(refusal(admission, 'device:w1023').retryAfterSec).toBe(1);
    for (const release of held) release();
  });

  it('weighs a download by the quiet time before it, and counts one at most maxHoldSampleSec', () => {
    expect(holdSampleWeight(0)).toBe(0.05);
    expect(holdSampleWeight(10_000)).toBeCloseTo(0.5);
    expect(holdSampleWeight(60_000)).toBeGreaterThan(0.98);
    const { admission, advance } = setup(1, { maxHoldSampleSec: 30 });
    advance(600_000);
    const stalled = admission.admit('device:stalled');
    advance(600_000);
    stalled();
    expect(admission.stats.averageHoldSec).toBeLessThanOrEqual(30);
    expect(admission.stats.averageHoldSec).toBeGreaterThan(29);
  });

  it('caps Retry-After and forgets callers that did not come back', () => {
    const { admission, advance } = setup(1, { maxRetryAfterSec: 30 });
    admission.admit('device:holder');
    for (let i = 0; i < 500; i++) refusal(admission, `device:${i}`);
    expect(refusal(admission, 'device:last').retryAfterSec).toBe(30);
    advance(61_000);
    const after = refusal(admission, 'device:new');
    expect(after.details).toMatchObject({ waiting: 1 });
    expect(after.retryAfterSec).toBe(1);
  });

  it('remembers at most maxWaiting callers, forgetting the longest waiting', () => {
    const { admission } = setup(1, { maxWaiting: 3 });
    admission.admit('device:holder');
    for (const id of ['a', 'b', 'c', 'd']) refusal(admission, `device:${id}`);
    expect(admission.stats.waiting).toBe(3);
  });

  it('logs deferrals at once, then at most every 10 s with the count since', () => {
    const { admission, lines, advance } = setup(1);
    admission.admit('device:holder');
    refusal(admission, 'device:a');
    for (let i = 0; i < 99; i++) {
      advance(50);
      refusal(admission, `device:${i}`);
    }
    expect(lines).toHaveLength(1);
    advance(5100);
    refusal(admission, 'device:late');
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatchObject({
      level: 40,
      event: 'artifact_download.deferred',
      deferred: 1,
      inProgress: 1,
      max: 1,
    });
    expect(lines[1]).toMatchObject({ deferred: 100, sinceSec: 10, waiting: 101 });
  });

  it('exposes the deferrals as a Prometheus counter beside two gauges', () => {
    const { admission } = setup(1);
    admission.admit('device:holder');
    refusal(admission, 'device:a');
    refusal(admission, 'device:a');
    const byName = Object.fromEntries(admission.metrics().map((m) => [m.name, m]));
    expect(byName.linesight_artifact_downloads_deferred_total).toMatchObject({
      type: 'counter',
      values: [{ value: 2 }],
    });
    expect(byName.linesight_artifact_downloads_in_progress?.values).toEqual([{ value: 1 }]);
    expect(byName.linesight_artifact_downloads_waiting?.values).toEqual([{ value: 1 }]);
  });
});
