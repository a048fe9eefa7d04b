import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { RetrainStore, type JobOptions } from './retrain-store.ts';

let dir: string;
let store: RetrainStore;
const options: JobOptions = { rollout: 'none', epochs: 3, seed: 1, members: 1 };
const job = (id: string, model = 'tile') => ({
  id,
  model,
  parentVersion: null,
  trigger: 'api' as const,
  triggerDetail: null,
  actor: 'op',
  options,
});

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'linesight-retrain-store-'));
  store = new RetrainStore(join(dir, 'retrain.sqlite'));
});

afterEach(async () => {
  store.close();
  await rm(dir, { recursive: true, force: true });
});

describe('RetrainStore', () => {
  it('holds one queued or running job per model', () => {
    store.add(job('a'));
    expect(() => store.add(job('b'))).toThrow(/one job per model/);
    store.add(job('c', 'other'));
    store.markRunning('a', '1.0.0');
    expect(() => store.add(job('b'))).toThrow(/has a retraining job under way \(a, running\)/);
    expect(store.finish('a', { state: 'failed', error: 'x' })).toBe(true);
    // Final states stay final.
    expect(store.finish('a', { state: 'registered' })).toBe(false);
    expect(store.get('a')).toMatchObject({ state: 'failed', error: 'x', parentVersion: '1.0.0' });
    store.add(job('b'));
    expect(store.list({ model: 'tile' }).map((j) => j.id)).toEqual(['b', 'a']);
  });

  it('marks jobs a previous process left unfinished as failed, across a reopen', () => {
    store.add(job('a'));
    store.markRunning('a', '1.0.0');
    store.setProgress('a', { step: 'fit', done: 3, total: 10, epoch: 1, epochs: 5 });
    store.add(job('b', 'other'));
    store.close();
    store = new RetrainStore(join(dir, 'retrain.sqlite'));
    expect(store.get('a').progress).toMatchObject({ step: 'fit', epoch: 1 });
    expect(store.failInterrupted('interrupted by a restart').sort()).toEqual(['a', 'b']);
    expect(store.get('a')).toMatchObject({ state: 'failed', error: 'interrupted by a restart' });
    expect(store.get('a').finishedAt).not.toBeNull();
    expect(store.active('tile')).toBeUndefined();
  });

  it('keeps datasets by fingerprint, the first registration winning', () => {
    const items = [
      { sha256: 'a'.repeat(64), label: 'good' as const, className: 'good' },
      { sha256: 'b'.repeat(64), label: 'defect' as const, className: 'scratch' },
    ];
    const first = store.addDataset({
      fingerprint: 'f1',
      name: 'one',
      createdBy: 'op',
      source: 'upload',
      items,
    });
    expect(first).toMatchObject({ count: 2, good: 1, defect: 1, source: 'upload', jobId: null });
    store.addDataset({ fingerprint: 'f1', name: 'two', createdBy: 'x', source: 'retrain', items });
    expect(store.dataset('f1')?.name).toBe('one');
    expect(store.datasetItems('f1')).toEqual(items);
    expect(() => store.datasetItems('nope')).toThrow(/not registered/);
  });
});
