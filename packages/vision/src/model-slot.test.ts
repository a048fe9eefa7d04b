import { describe, expect, it } from 'vitest';
import { ModelSlot } from './model-slot.ts';

class FakeModel {
  closed = 0;
  constructor(readonly name: string) {}
  async close(): Promise<void> {
    this.closed++;
  }
}

describe('ModelSlot', () => {
  it('has no model until the first swap', () => {
    const slot = new ModelSlot<FakeModel, string>();
    expect(slot.acquire()).toBeUndefined();
    expect(slot.hasModel).toBe(false);
  });

  it('keeps an old model open until its in-flight lease is released', async () => {
    const slot = new ModelSlot<FakeModel, string>();
    const a = new FakeModel('a');
    const b = new FakeModel('b');
    await slot.swap(a, 'v1');
    const inFlight = slot.acquire();
    expect(inFlight?.info).toBe('v1');
    let swapped = false;
    const swap = slot.swap(b, 'v2').then(() => (swapped = true));
    // New acquisitions see the new model at once.
    expect(slot.acquire()?.info).toBe('v2');
    await Promise.resolve();
    expect(a.closed).toBe(0);
    expect(swapped).toBe(false);
    inFlight?.release();
    inFlight?.release();
    await swap;
    expect(a.closed).toBe(1);
    expect(b.closed).toBe(0);
  });

  it('does not finish closing while a model it swapped out is still closing', async () => {
    const slot = new ModelSlot<FakeModel, string>();
    let finishOld: () => void = () => undefined;
    const old = new FakeModel('old');
    old.close = () => new Promise<void>((resolve) => (finishOld = resolve));
    await slot.swap(old, 'v1');
    const swapped = slot.swap(new FakeModel('new'), 'v2');
    let closed = false;
    const closing = slot.close().then(() => (closed = true));
    await new Promise((r) => setImmediate(r));
    // A process that exits now would tear down the old model's worker mid-inference.
    expect(closed).toBe(false);
    finishOld();
    await Promise.all([swapped, closing]);
    expect(closed).toBe(true);
  });

  it('closes the live model on close and refuses later swaps', async () => {
    const slot = new ModelSlot<FakeModel, string>();
    const a = new FakeModel('a');
    await slot.swap(a, 'v1');
    await slot.close();
    await slot.close();
    expect(a.closed).toBe(1);
    const c = new FakeModel('c');
    await expect(slot.swap(c, 'v3')).rejects.toThrow(/closed/);
    expect(c.closed).toBe(1);
  });
});
