import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { DesiredState } from '@linesight/protocol';
import { openRegistryDatabase, type RegistryDatabase } from '../registry/database.ts';
import { DeviceRegistry } from '../registry/device-registry.ts';
import { DesiredIssuer } from '../signing/desired-issuer.ts';
import { KeyRing } from '../signing/key-ring.ts';
import { DesiredStateService } from './desired-state-service.ts';
import type { FleetLink } from './fleet-link.ts';

const TTL_SEC = 1000;

let dir: string;
let db: RegistryDatabase;
let devices: DeviceRegistry;
let published: DesiredState[];
let service: DesiredStateService;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'linesight-desired-'));
  db = openRegistryDatabase(':memory:');
  devices = new DeviceRegistry(db);
  published = [];
  // The MQTT link is not what this test is about: it records what would be published.
  const link = {
    publishDesired: async (doc: DesiredState) => {
      published.push(doc);
    },
  } as unknown as FleetLink;
  service = new DesiredStateService({
    devices,
    issuer: new DesiredIssuer(await KeyRing.open(dir), TTL_SEC),
    link,
  });
  for (const id of ['d1', 'd2']) devices.provision(id);
});

afterEach(async () => {
  db.close();
  await rm(dir, { recursive: true, force: true });
});

describe('DesiredStateService.refresh', () => {
  it('re-issues a document once half its lifetime has passed, not before', async () => {
    const issued = Date.now();
    await service.setMany([
      ['d1', { model: null, telemetryIntervalSec: 5 }],
      ['d2', { model: null }],
    ]);
    const first = new Map(devices.allDesired().map((d) => [d.deviceId, d]));
    published.length = 0;

    expect(await service.refresh({ now: new Date(issued + 0.4 * TTL_SEC * 1000) })).toBe(0);
    expect(published).toEqual([]);

    expect(await service.refresh({ now: new Date(issued + 0.6 * TTL_SEC * 1000) })).toBe(2);
    expect(published.map((d) => d.deviceId).sort()).toEqual(['d1', 'd2']);
    for (const doc of devices.allDesired()) {
      const before = first.get(doc.deviceId)!;
      expect(doc.revision).toBe(before.revision + 1);
      expect(Date.parse(doc.expiresAt)).toBeGreaterThanOrEqual(Date.parse(before.expiresAt));
      // The content is kept as it was.
      expect(doc.telemetryIntervalSec).toBe(before.telemetryIntervalSec);
      expect(doc.model).toBeNull();
    }
  });

  it('re-issues every document when forced (a key rotation), whatever its age', async () => {
    await service.set('d1', { model: null });
    published.length = 0;
    expect(await service.refresh({ force: true })).toBe(1);
    expect(published).toHaveLength(1);
  });
});
