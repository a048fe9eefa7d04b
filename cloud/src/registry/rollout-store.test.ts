import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openRegistryDatabase, type RegistryDatabase } from './database.ts';
import { RolloutStore, type RolloutRecord } from './rollout-store.ts';

let dir: string;
let db: RegistryDatabase;
let store: RolloutStore;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'linesight-rollout-store-'));
  db = openRegistryDatabase(join(dir, 'registry.sqlite'));
  store = new RolloutStore(db);
});

afterEach(async () => {
  db.close();
  await rm(dir, { recursive: true, force: true });
});

function rollout(id: string, state: string, at: number): RolloutRecord {
  return {
    id,
    modelName: 'm',
    modelVersion: '1.0.0',
    deviceIds: ['d-1', 'd-2', 'd-3'],
    state,
    createdAt: new Date(Date.UTC(2026, 0, 1, 0, 0, at)).toISOString(),
    createdBy: 'admin',
    spec: null,
    progress: null,
    reason: null,
    updatedAt: null,
  };
}

describe('RolloutStore, parsed plans', () => {
  it('keeps an active rollout parsed however many ended ones are listed, and drops the oldest ended ones', () => {
    // The newest: a list reads it first, then every ended one.
    store.add(rollout('active', 'in_progress', 100), [['d-1'], ['d-2', 'd-3']]);
    const ended = Array.from({ length: 20 }, (_, i) => `ended-${i}`);
    ended.forEach((id, i) => store.add(rollout(id, 'completed', i + 1), [['d-1', 'd-2', 'd-3']]));
    expect(store.listInStates(['in_progress']).map((r) => r.id)).toEqual(['active']);
    const plan = store.waves('active');
    expect(plan).toEqual([['d-1'], ['d-2', 'd-3']]);
    // Shared between callers: frozen.
    expect(Object.isFrozen(plan) && Object.isFrozen(plan[0])).toBe(true);
    const firstEnded = store.waves('ended-0');

    // A list of every rollout reads each one: the active plan stays, the oldest ended goes.
    for (const r of store.list()) store.waves(r.id);
    expect(store.waves('active')).toBe(plan);
    const again = store.waves('ended-0');
    expect(again).toEqual(firstEnded);
    expect(again).not.toBe(firstEnded);
    // The most recently read ended rollouts stay parsed.
    expect(store.waves('ended-19')).toBe(store.waves('ended-19'));
    expect(store.get('active').deviceIds).toBe(store.get('active').deviceIds);
  });

  it('reads a rollout again once it has ended and been pushed out', () => {
    store.add(rollout('r', 'in_progress', 0), [['d-1', 'd-2', 'd-3']]);
    expect(store.get('r').state).toBe('in_progress');
    const plan = store.waves('r');
    store.setState('r', 'completed');
    expect(store.get('r').state).toBe('completed');
    for (let i = 0; i < 20; i++) {
      store.add(rollout(`x-${i}`, 'completed', i + 1));
      store.get(`x-${i}`);
    }
    expect(store.waves('r')).toEqual(plan);
    expect(store.waves('r')).not.toBe(plan);
  });
});
