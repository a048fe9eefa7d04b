import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { EventRecord } from '@linesight/protocol';
import { EdgeDataStore } from './edge-data-store.ts';

let dir: string | undefined;
let store: EdgeDataStore | undefined;

afterEach(async () => {
  store?.close();
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
});

describe('EdgeDataStore events', () => {
  it('cuts a long range at the newest events when asked newest first, at the oldest otherwise', async () => {
    dir = await mkdtemp(join(tmpdir(), 'edge-store-'));
    store = new EdgeDataStore(join(dir, 'edge.sqlite'));
    const events: EventRecord[] = Array.from({ length: 10 }, (_, seq) => ({
      boot: 0,
      seq,
      at: new Date(Date.UTC(2026, 0, 1, 0, seq)).toISOString(),
      level: 'info',
      type: `e${seq}`,
      message: 'm',
    }));
    store.write([{ kind: 'events', deviceId: 'd1', records: events }]);
    const q = { deviceId: 'd1', limit: 3 };
    expect(store.events(q).map((e) => e.type)).toEqual(['e0', 'e1', 'e2']);
    expect(store.events({ ...q, newestFirst: true }).map((e) => e.type)).toEqual([
      'e9',
      'e8',
      'e7',
    ]);
  });
});
