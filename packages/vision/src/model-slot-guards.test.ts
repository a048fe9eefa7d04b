import { describe, expect, it } from 'vitest';
import { ModelSlot } from './model-slot.ts';

// The lease bookkeeping that keeps a swap from closing a model under a frame, and clear().

class FakeModel {
  closed = 0;
  async close(): Promise<void> {
    this.closed++;
  }
}

const turn = () => new Promise((r) => setImmediate(r));

describe('ModelSlot guards', () => {
  it('tells the live info and whether a model is live', async () => {
    const slot = new ModelSlot<FakeModel, string>();
    expect(slot.info).toBeUndefined();
    await slot.swap(new FakeModel(), 'v1');
    expect(slot.info).toBe('v1');
    expect(slot.hasModel).toBe(true);
    await slot.clear();
    expect(slot.info).toBeUndefined();
    expect(slot.hasModel).toBe(false);
  });

  it('hands out the live model and its info with each lease', async () => {
    const slot = new ModelSlot<FakeModel, string>();
    const a = new FakeModel();
    await slot.swap(a, 'v1');
    const lease = slot.acquire();
    expect(lease?.model).toBe(a);
    expect(lease?.info).toBe('v1');
    lease?.release();
  });

  it('does not let a lease released twice stand in for another frame still in flight', async () => {
    const slot = new ModelSlot<FakeModel, string>();
    const a = new FakeModel();
    await slot.swap(a, 'v1');
    const first = slot.acquire();
    const second = slot.acquire();
    const swapped = slot.swap(new FakeModel(), 'v2');
    first?.release();
    first?.release();
    await turn();
    // The second frame still runs on a: it must stay open.
    expect(a.closed).toBe(0);
    second?.release();
    await swapped;
    expect(a.closed).toBe(1);
  });

  it('closes a retired model without leases at once and keeps a leased one open', async () => {
    const slot = new ModelSlot<FakeModel, string>();
    const a = new FakeModel();
    await slot.swap(a, 'v1');
    // Leases taken and released before the swap leave nothing to wait for.
    slot.acquire()?.release();
    await slot.swap(new FakeModel(), 'v2');
    expect(a.closed).toBe(1);
  });

  it('clears: waits for the last lease, closes the model once and stays usable', async () => {
    const slot = new ModelSlot<FakeModel, string>();
    const a = new FakeModel();
    await slot.swap(a, 'v1');
    const lease = slot.acquire();
    let cleared = false;
    const clearing = slot.clear().then(() => (cleared = true));
    expect(slot.acquire()).toBeUndefined();
    await turn();
    expect(cleared).toBe(false);
    expect(a.closed).toBe(0);
    lease?.release();
    await clearing;
    expect(a.closed).toBe(1);
    await slot.clear();
    const b = new FakeModel();
    await slot.swap(b, 'v2');
    const onB = slot.acquire();
    expect(onB?.info).toBe('v2');
    onB?.release();
    await slot.close();
    expect([a.closed, b.closed]).toEqual([1, 1]);
  });

  it('closes only after the live model released its last lease', async () => {
    const slot = new ModelSlot<FakeModel, string>();
    const a = new FakeModel();
    await slot.swap(a, 'v1');
    const lease = slot.acquire();
    let closed = false;
    const closing = slot.close().then(() => (closed = true));
    await turn();
    expect(closed).toBe(false);
    lease?.release();
    await closing;
    expect(a.closed).toBe(1);
    // Closing again closes nothing twice.
    await slot.close();
    expect(a.closed).toBe(1);
  });

  it('reports a failing close to whoever swapped, and still closes the slot', async () => {
    const slot = new ModelSlot<FakeModel, string>();
    const bad = new FakeModel();
    bad.close = async () => {
      throw new Error('close failed');
    };
    await slot.swap(bad, 'v1');
    await expect(slot.swap(new FakeModel(), 'v2')).rejects.toThrow('close failed');
    await expect(slot.close()).resolves.toBeUndefined();
  });
});
