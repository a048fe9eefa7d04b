import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openRegistryDatabase, type RegistryDatabase } from '../registry/database.ts';
import { DeviceRegistry } from '../registry/device-registry.ts';
import { DeviceSnapshot } from './device-snapshot.ts';

let dir: string;
let db: RegistryDatabase;
let registry: DeviceRegistry;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'linesight-snapshot-'));
  db = openRegistryDatabase(join(dir, 'registry.sqlite'));
  registry = new DeviceRegistry(db);
});

afterEach(async () => {
  db.close();
  await rm(dir, { recursive: true, force: true });
});

describe('DeviceSnapshot', () => {
  it('is a copy that never changes, made again only when a device changed', () => {
    registry.provisionMany([{ id: 's-1' }, { id: 's-2' }]);
    const snapshot = new DeviceSnapshot(registry);
    const first = snapshot.current();
    expect(first).not.toBe(registry.reportedById());
    expect([...first.keys()].sort()).toEqual(['s-1', 's-2']);
    // Nothing written: the same copy, not another 10,000-entry one.
    expect(snapshot.current()).toBe(first);

    registry.setOnline('s-1', true, '2026-01-01T00:00:00.000Z');
    registry.provision('s-3');
    // The live map moved on; a tick holding the first copy still sees the state it began with.
    expect(registry.reportedById().get('s-1')?.online).toBe(true);
    expect(first.get('s-1')?.online).toBe(false);
    expect(first.has('s-3')).toBe(false);

    const second = snapshot.current();
    expect(second).not.toBe(first);
    expect(second).not.toBe(registry.reportedById());
    expect(second.get('s-1')?.online).toBe(true);
    expect(second.has('s-3')).toBe(true);
    expect(snapshot.current()).toBe(second);
  });
});
