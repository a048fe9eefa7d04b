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
import { PublishPacer } from './publish-pacer.ts';

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
  await service.close();
  db.close();
  await rm(dir, { recursive: true, force: true });
});

describe('DesiredStateService.refresh', () => {
  it('re-issues a document once half its lifetime has passed, not before', async () => {
    const issued = Date.now();
    service.setMany([
      ['d1', { model: null, telemetryIntervalSec: 5 }],
      ['d2', { model: null }],
    ]);
    await service.published();
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

describe('DesiredStateService background publishes', () => {
  it('stores a wave and answers at once; a restart mid-publish still reaches every device', async () => {
    const path = join(dir, 'registry.sqlite');
    const keys = await KeyRing.open(dir);
    const ids = Array.from({ length: 40 }, (_, i) => `w${i}`);
    let fileDb = openRegistryDatabase(path);
    let registry = new DeviceRegistry(fileDb);
    for (const id of ids) registry.provision(id);
    // The first cloud's broker acknowledges 5 publishes, then never again (it is about to die).
    const before: DesiredState[] = [];
    let acked = 0;
    const first = new DesiredStateService({
      devices: registry,
      issuer: new DesiredIssuer(keys, TTL_SEC),
      link: {
        publishDesired: (doc: DesiredState) => {
          before.push(doc);
          return acked++ < 5 ? Promise.resolve() : new Promise<void>(() => undefined);
        },
      } as unknown as FleetLink,
      // 10 at once, then the next turn never comes before the crash.
      pacer: new PublishPacer({
        ratePerSec: 1,
        burst: 10,
        sleep: () => new Promise(() => undefined),
      }),
    });
    const docs = first.setMany(ids.map((id) => [id, { model: null, telemetryIntervalSec: 7 }]));
    // Answered before the publishes: every device is still to be published.
    expect(docs).toHaveLength(40);
    expect(first.countPending(ids)).toBe(40);
    expect(first.publishStats().waiting).toBeGreaterThan(0);
    await first.close();
    fileDb.close();
    expect(new Set(before.map((d) => d.deviceId)).size).toBeLessThan(40);

    fileDb = openRegistryDatabase(path);
    registry = new DeviceRegistry(fileDb);
    const after: DesiredState[] = [];
    const second = new DesiredStateService({
      devices: registry,
      issuer: new DesiredIssuer(keys, TTL_SEC),
      link: {
        publishDesired: async (doc: DesiredState) => {
          after.push(doc);
        },
      } as unknown as FleetLink,
    });
    second.republishAll();
    await second.published();
    expect(after.map((d) => d.deviceId).sort()).toEqual([...ids].sort());
    for (const d of after) {
      expect(d.telemetryIntervalSec).toBe(7);
      expect(d.revision).toBe(docs.find((x) => x.deviceId === d.deviceId)?.revision);
    }
    expect(second.countPending(ids)).toBe(0);
    await second.close();
    fileDb.close();
  });

  it('drops a waiting background document of a device set directly, so the older one never follows', async () => {
    let release: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const order: string[] = [];
    let clockMs = 0;
    const gated = new DesiredStateService({
      devices,
      issuer: new DesiredIssuer(await KeyRing.open(dir), TTL_SEC),
      link: {
        publishDesired: async (doc: DesiredState) => {
          order.push(`${doc.deviceId}@${doc.revision}`);
        },
      } as unknown as FleetLink,
      // d1 goes at once; d2 waits for its turn until the test releases it.
      pacer: new PublishPacer({
        ratePerSec: 1,
        burst: 1,
        nowMs: () => clockMs,
        sleep: async (ms) => {
          await gate;
          clockMs += ms;
        },
      }),
    });
    gated.setMany([
      ['d1', { model: null }],
      ['d2', { model: null }],
    ]);
    await gated.set('d2', { model: null, telemetryIntervalSec: 3 });
    release();
    await gated.published();
    // d2's first document (revision 1) was still waiting for its turn and is never sent.
    expect(order.filter((o) => o.startsWith('d2'))).toEqual(['d2@2']);
    await gated.close();
  });
});
