import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { DesiredState, ReportedState, Telemetry } from '@linesight/protocol';
import { openRegistryDatabase, type RegistryDatabase } from './database.ts';
import { DeviceRegistry } from './device-registry.ts';

let dir: string;
let db: RegistryDatabase;
let registry: DeviceRegistry;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'linesight-devices-'));
  db = openRegistryDatabase(join(dir, 'registry.sqlite'));
  registry = new DeviceRegistry(db);
});

afterEach(async () => {
  db.close();
  await rm(dir, { recursive: true, force: true });
});

function reported(deviceId: string, version: string, at: string): ReportedState {
  return {
    schema: 'linesight.reported/v1',
    deviceId,
    phase: 'running',
    desiredRevision: 1,
    model: { name: 'm', version, sha256: 'a'.repeat(64) },
    shadowModel: null,
    frames: { captured: 1, scored: 1, defects: 0, unknown: 0, droppedOverload: 0 },
    framesByVersion: {},
    agentVersion: '0.1.0',
    updatedAt: at,
  } as ReportedState;
}

describe('DeviceRegistry.provisionMany', () => {
  it('provisions all in order, each with its own secret', () => {
    const made = registry.provisionMany([{ id: 'a-1', labels: { line: 'L1' } }, { id: 'a-2' }]);
    expect(made.map((d) => d.id)).toEqual(['a-1', 'a-2']);
    expect(registry.checkSecret('a-1', made[0]!.secret)).toBe(true);
    expect(registry.checkSecret('a-2', made[0]!.secret)).toBe(false);
    expect(registry.get('a-1').labels).toEqual({ line: 'L1' });
  });

  it('provisions none when one id is taken, repeated or reserved', () => {
    registry.provision('taken');
    expect(() => registry.provisionMany([{ id: 'b-1' }, { id: 'taken' }])).toThrow(
      /already provisioned or listed twice: taken/,
    );
    expect(() => registry.provisionMany([{ id: 'b-2' }, { id: 'b-2' }])).toThrow(/b-2/);
    expect(() => registry.provisionMany([{ id: 'b-3' }, { id: 'linesight-x' }])).toThrow(
      /reserved/,
    );
    expect(registry.list().map((d) => d.id)).toEqual(['taken']);
  });
});

describe('DeviceRegistry.listReported', () => {
  it('parses a device again only when what it stored changed, and forgets removed devices', () => {
    registry.provisionMany([{ id: 'd-1' }, { id: 'd-2' }, { id: 'd-3' }]);
    registry.setReported('d-1', reported('d-1', '1.0.0', '2026-01-01T00:00:00.000Z'));
    registry.setReported('d-2', reported('d-2', '1.0.0', '2026-01-01T00:00:00.000Z'));
    const first = new Map(registry.listReported().map((d) => [d.id, d]));
    expect(first.get('d-1')?.reported?.model?.version).toBe('1.0.0');
    expect(first.get('d-3')?.reported).toBeNull();

    registry.setReported('d-2', reported('d-2', '1.1.0', '2026-01-01T00:00:01.000Z'));
    registry.setTelemetry('d-1', {
      schema: 'linesight.telemetry/v1',
      deviceId: 'd-1',
      at: '2026-01-01T00:00:02.000Z',
    } as Telemetry);
    registry.setOnline('d-1', true, '2026-01-01T00:00:03.000Z');
    const second = new Map(registry.listReported().map((d) => [d.id, d]));
    // Unchanged text: the very object parsed before; changed text: parsed again.
    expect(second.get('d-1')?.reported).toBe(first.get('d-1')?.reported);
    expect(second.get('d-2')?.reported).not.toBe(first.get('d-2')?.reported);
    expect(second.get('d-2')?.reported?.model?.version).toBe('1.1.0');
    expect(second.get('d-1')?.telemetry?.at).toBe('2026-01-01T00:00:02.000Z');
    expect(second.get('d-1')?.online).toBe(true);
    expect(second.get('d-1')?.lastSeen).toBe('2026-01-01T00:00:03.000Z');
    // Shared between callers: frozen, so a caller changing one fails loudly instead of quietly.
    expect(Object.isFrozen(second.get('d-1')?.reported)).toBe(true);

    registry.remove('d-1');
    registry.provision('d-1');
    const third = new Map(registry.listReported().map((d) => [d.id, d]));
    expect(third.get('d-1')?.reported).toBeNull();
    expect([...third.keys()]).toEqual(['d-1', 'd-2', 'd-3']);
  });
});

describe('DeviceRegistry.reportedById', () => {
  it('reads again only the devices written since the last read, and each write path marks its device', () => {
    registry.provisionMany([{ id: 'e-1' }, { id: 'e-2' }]);
    const first = registry.reportedById();
    const e1 = first.get('e-1');
    const e2 = first.get('e-2');
    expect(Object.isFrozen(e1)).toBe(true);

    // Written behind the registry's back (another connection): not seen, since nothing marked it.
    db.prepare("UPDATE devices SET last_seen = 'behind' WHERE id = 'e-2'").run();
    registry.setOnline('e-1', true, '2026-01-01T00:00:00.000Z');
    const second = registry.reportedById();
    expect(second.get('e-1')).not.toBe(e1);
    expect(second.get('e-1')?.online).toBe(true);
    expect(second.get('e-2')).toBe(e2);

    registry.setReported('e-2', reported('e-2', '2.0.0', '2026-01-01T00:00:01.000Z'));
    expect(registry.reportedById().get('e-2')?.reported?.model?.version).toBe('2.0.0');
    registry.setTelemetry('e-2', {
      schema: 'linesight.telemetry/v1',
      deviceId: 'e-2',
      at: '2026-01-01T00:00:02.000Z',
    } as Telemetry);
    expect(registry.reportedById().get('e-2')?.telemetry?.at).toBe('2026-01-01T00:00:02.000Z');

    registry.markAllOffline();
    expect([...registry.reportedById().values()].map((d) => d.online)).toEqual([false, false]);

    registry.provision('e-0');
    expect(registry.listReported().map((d) => d.id)).toEqual(['e-0', 'e-1', 'e-2']);
    registry.remove('e-1');
    expect(registry.listReported().map((d) => d.id)).toEqual(['e-0', 'e-2']);
    expect(registry.reportedById().has('e-1')).toBe(false);
  });

  it('lists what a rolled-back batch left: nothing of it', () => {
    registry.provision('taken');
    expect(registry.listReported().map((d) => d.id)).toEqual(['taken']);
    expect(() => registry.provisionMany([{ id: 'f-1' }, { id: 'taken' }])).toThrow();
    // A batch that fails inside its transaction rolls back rows the registry had marked.
    const insert = db.transaction(() => {
      registry.provision('f-2');
      throw new Error('rolled back');
    });
    expect(() => insert()).toThrow('rolled back');
    expect(registry.listReported().map((d) => d.id)).toEqual(['taken']);
  });

  it('lists the same devices as a full read after many writes (past the full-read threshold)', () => {
    const ids = Array.from({ length: 2_100 }, (_, i) => ({
      id: `g-${String(i).padStart(4, '0')}`,
    }));
    registry.provisionMany(ids.slice(0, 10));
    registry.listReported();
    registry.provisionMany(ids.slice(10));
    for (const { id } of ids.slice(0, 50)) registry.setOnline(id, true, 'now');
    const listed = registry.listReported();
    expect(listed.map((d) => d.id)).toEqual(ids.map((d) => d.id));
    expect(listed.filter((d) => d.online)).toHaveLength(50);
  });
});

describe('DeviceRegistry.remove', () => {
  it('decommissions a device that was assigned models, and the id provisioned again inherits none', () => {
    registry.provision('h-1');
    registry.setDesired({
      deviceId: 'h-1',
      revision: 1,
      model: { signed: { manifest: { name: 'm', version: '1.0.0' } } },
      shadow: { signed: { manifest: { name: 'm', version: '1.1.0' } } },
    } as unknown as DesiredState);
    expect(registry.mayDownload('h-1', 'm', '1.0.0')).toBe(true);
    registry.remove('h-1');
    expect(registry.has('h-1')).toBe(false);
    registry.provision('h-1');
    expect(registry.mayDownload('h-1', 'm', '1.0.0')).toBe(false);
    expect(registry.mayDownload('h-1', 'm', '1.1.0')).toBe(false);
    expect(registry.get('h-1').desired).toBeNull();
  });
});

describe('DeviceRegistry.reportedVersion', () => {
  it('moves when a write changes what reportedById returns, and only then', () => {
    registry.provisionMany([{ id: 'v-1' }, { id: 'v-2' }]);
    const first = registry.reportedVersion();
    expect(registry.reportedVersion()).toBe(first);

    // Read before reportedById: the write is taken in first, so the version already moved.
    registry.setOnline('v-1', true, '2026-01-01T00:00:00.000Z');
    const second = registry.reportedVersion();
    expect(second).not.toBe(first);
    const map = registry.reportedById();
    expect(registry.reportedVersion()).toBe(second);

    // Written, but to what it was: the map keeps its records, so the version stays.
    registry.setOnline('v-1', true, '2026-01-01T00:00:00.000Z');
    expect(registry.reportedVersion()).toBe(second);
    registry.markAllOffline();
    const third = registry.reportedVersion();
    expect(third).not.toBe(second);
    registry.markAllOffline();
    expect(registry.reportedVersion()).toBe(third);

    registry.setReported('v-2', reported('v-2', '1.0.0', '2026-01-01T00:00:01.000Z'));
    const fourth = registry.reportedVersion();
    expect(fourth).not.toBe(third);
    registry.provision('v-3');
    const fifth = registry.reportedVersion();
    expect(fifth).not.toBe(fourth);
    registry.remove('v-3');
    expect(registry.reportedVersion()).not.toBe(fifth);
    expect(registry.reportedById()).toBe(map);
  });
});
