import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { SignedManifest } from '@linesight/protocol';
import { testManifest } from '@linesight/testkit/manifests';
import { ModelStore } from './model-store.ts';

/** The store keeps signed manifests as given (they were verified before); the signature is a stand-in. */
const signed = (version: string, fill: string): SignedManifest => ({
  manifest: testManifest(version, fill.repeat(64)),
  signature: 'stand-in',
});
const v1 = signed('1.0.0', '1');
const v2 = signed('2.0.0', '2');
const v3 = signed('3.0.0', '3');
const WATCHDOG = { code: 'ERR_AGENT_WATCHDOG', message: 'watchdog: 3 consecutive runs' } as const;

let dir: string;
let store: ModelStore;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'linesight-store-'));
  store = new ModelStore(dir);
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('ModelStore.quarantine', () => {
  it('quarantines the active version with its reason and makes last-known-good active', async () => {
    await store.activate(v1);
    await store.activate(v2);
    const state = await store.quarantine(v2.manifest.sha256, WATCHDOG);
    expect(state.active?.manifest.version).toBe('1.0.0');
    expect(state.lastKnownGood).toBeNull();
    expect(state.stable).toBe(true);
    expect(state.quarantined).toEqual([v2.manifest.sha256]);
    expect(state.quarantineReasons[v2.manifest.sha256]).toMatchObject(WATCHDOG);
    expect(await store.readState()).toEqual(state);
  });

  it('leaves no active version when there is no last-known-good', async () => {
    await store.activate(v2);
    const state = await store.quarantine(v2.manifest.sha256, WATCHDOG);
    expect(state.active).toBeNull();
    expect(state.quarantined).toEqual([v2.manifest.sha256]);
  });

  it('forgets a quarantined last-known-good and leaves the active version alone', async () => {
    await store.activate(v1);
    await store.activate(v2);
    const state = await store.quarantine(v1.manifest.sha256, WATCHDOG);
    expect(state.active?.manifest.version).toBe('2.0.0');
    expect(state.lastKnownGood).toBeNull();
  });

  it('keeps the last 20 quarantined versions and their reasons', async () => {
    for (let i = 0; i < 22; i++)
      await store.quarantine(i.toString(16).padStart(64, '0'), { ...WATCHDOG, message: `#${i}` });
    const state = await store.readState();
    expect(state.quarantined).toHaveLength(20);
    expect(state.quarantined[0]).toBe((2).toString(16).padStart(64, '0'));
    expect(Object.keys(state.quarantineReasons).sort()).toEqual([...state.quarantined].sort());
  });

  it('reads state files written before reasons were kept', async () => {
    const old = '9'.repeat(64);
    await mkdir(store.dir, { recursive: true });
    await writeFile(
      join(store.dir, 'state.json'),
      JSON.stringify({
        active: v1,
        lastKnownGood: null,
        activatedAt: null,
        startsSinceActivation: 0,
        stable: true,
        quarantined: [old],
      }),
    );
    expect((await store.readState()).quarantineReasons).toEqual({});
    const state = await store.quarantine(v2.manifest.sha256, WATCHDOG);
    expect(state.quarantined).toEqual([old, v2.manifest.sha256]);
    expect(Object.keys(state.quarantineReasons)).toEqual([v2.manifest.sha256]);
    expect(state.active?.manifest.version).toBe('1.0.0');
  });

  it('applies concurrent changes one after another, losing none', async () => {
    await store.activate(v1);
    await store.activate(v2);
    await Promise.all([
      store.quarantine(v2.manifest.sha256, WATCHDOG),
      store.activate(v3),
      store.markStable(v3.manifest.sha256),
    ]);
    const state = await store.readState();
    expect(state.quarantined).toEqual([v2.manifest.sha256]);
    expect(state.active?.manifest.version).toBe('3.0.0');
    expect(state.lastKnownGood?.manifest.version).toBe('1.0.0');
    expect(state.stable).toBe(true);
  });
});
