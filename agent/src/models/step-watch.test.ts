import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { watchStep, type SlowStep } from './step-watch.ts';

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
});
