import { describe, expect, it } from 'vitest';
import { eventually } from '@linesight/testkit/eventually';
import { PacedLoop } from './paced-loop.ts';

describe('PacedLoop', () => {
  it('runs one step at a time and stops after `more` says no', async () => {
    let running = 0;
    let overlapped = false;
    let steps = 0;
    const loop = new PacedLoop(
      1000,
      async () => {
        running += 1;
        overlapped ||= running > 1;
        await new Promise<void>((resolve) => setImmediate(resolve));
        steps += 1;
        running -= 1;
      },
      () => steps < 3,
    );
    loop.start();
    await eventually(() => expect(steps).toBe(3), { timeoutMs: 10_000 });
    await loop.stop();
    expect(steps).toBe(3);
    expect(overlapped).toBe(false);
  });

  it('stop() resolves only once the step in flight has settled', async () => {
    let release!: () => void;
    let started = 0;
    let finished = 0;
    const loop = new PacedLoop(1000, async () => {
      started += 1;
      await new Promise<void>((resolve) => (release = resolve));
      finished += 1;
    });
    loop.start();
    await eventually(() => expect(started).toBe(1), { timeoutMs: 10_000 });
    let stopped = false;
    const stopping = loop.stop().then(() => (stopped = true));
    await new Promise<void>((resolve) => setImmediate(resolve));
    expect(stopped).toBe(false);
    release();
    await stopping;
    expect(finished).toBe(1);
  });
});
