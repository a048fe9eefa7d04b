import { describe, it, expect } from 'vitest';
import { FrameRateCap } from './frame-rate-cap.ts';

function admitted(cap: FrameRateCap, timesMs: number[]): number[] {
  return timesMs.filter((t) => cap.admit(t));
}

describe('FrameRateCap', () => {
  it('thins a 25 fps stream to 10 fps', () => {
    const cap = new FrameRateCap(10);
    const times = Array.from({ length: 250 }, (_, i) => i * 40); // 10 s at 25 fps.
    const passed = admitted(cap, times);
    expect(passed.length).toBeGreaterThanOrEqual(95);
    expect(passed.length).toBeLessThanOrEqual(101);
    expect(cap.dropped).toBe(250 - passed.length);
    // Never two frames closer than half a period.
    for (let i = 1; i < passed.length; i++) {
      expect((passed[i] ?? 0) - (passed[i - 1] ?? 0)).toBeGreaterThanOrEqual(50);
    }
  });

  it('passes every frame of a jittery source running at the cap', () => {
    const cap = new FrameRateCap(30);
    const times = Array.from({ length: 300 }, (_, i) => i * (1000 / 30) + (i % 2 ? 6 : -6));
    expect(admitted(cap, times)).toHaveLength(300);
    expect(cap.dropped).toBe(0);
  });

  it('does not burst after a pause', () => {
    const cap = new FrameRateCap(10);
    expect(cap.admit(0)).toBe(true);
    // Five seconds of silence, then frames every 10 ms.
    const times = Array.from({ length: 100 }, (_, i) => 5000 + i * 10);
    // The first frame after the pause, then 10 fps: no catching up.
    expect(admitted(cap, times)).toHaveLength(11);
  });

  it('refuses a nonsensical fps', () => {
    expect(() => new FrameRateCap(0)).toThrow(RangeError);
    expect(() => new FrameRateCap(Number.NaN)).toThrow(RangeError);
  });
});
