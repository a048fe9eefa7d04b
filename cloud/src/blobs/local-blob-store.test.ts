import { mkdir, mkdtemp, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { LocalBlobStore } from './local-blob-store.ts';

let dir: string;
let store: LocalBlobStore;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'local-blobs-'));
  store = new LocalBlobStore(join(dir, 'blobs'));
  await store.start();
});
afterEach(async () => {
  await store.close();
  await rm(dir, { recursive: true, force: true });
});

async function listed(prefix: string, pageSize?: number) {
  const out: { key: string; bytes: number }[] = [];
  for await (const e of store.list(prefix, pageSize === undefined ? {} : { pageSize }))
    out.push({ key: e.key, bytes: e.bytes });
  return out.sort((a, b) => a.key.localeCompare(b.key));
}

const KEYS = [
  'samples/cam-1/0-1.jpg',
  'samples/cam-1/0-1-map.png',
  'samples/cam-1/0-2.jpg',
  'samples/cam-10/0-1.jpg',
  'samples/cam+2@x/0-3.jpg',
  'models/m/1.0.0+build.7/model.onnx',
];

function expected(prefix: string) {
  return KEYS.map((key, i) => ({ key, bytes: 10 + i }))
    .filter((e) => e.key.startsWith(prefix))
    .sort((a, b) => a.key.localeCompare(b.key));
}

describe('LocalBlobStore.list', () => {
  it('lists nothing in an empty store, or under a prefix no folder has', async () => {
    expect(await listed('')).toEqual([]);
    expect(await listed('samples/')).toEqual([]);
    // A store whose folder was never made.
    const absent = new LocalBlobStore(join(dir, 'never-made'));
    const out = [];
    for await (const e of absent.list('samples/')) out.push(e);
    expect(out).toEqual([]);
  });

  it('lists the keys under a prefix, whole folders or part of a name, with @ and +', async () => {
    for (const [i, key] of KEYS.entries()) await store.put(key, new Uint8Array(10 + i));
    expect(await listed('samples/')).toEqual(expected('samples/'));
    expect(await listed('samples/', 1)).toEqual(expected('samples/'));
    expect(await listed('samples/cam-1/')).toEqual(expected('samples/cam-1/'));
    // A prefix that ends inside a name, as S3 prefixes may.
    expect(await listed('samples/cam-1')).toEqual(expected('samples/cam-1'));
    expect(await listed('samples/cam-1/0-1')).toEqual(expected('samples/cam-1/0-1'));
    expect(await listed('samples/cam+2@x/')).toEqual(expected('samples/cam+2@x/'));
    expect(await listed('models/m/1.0.0+')).toEqual(expected('models/m/1.0.0+'));
    expect(await listed('')).toEqual(expected(''));
    expect(await listed('nothing/')).toEqual([]);
    // A key is not a folder: nothing lies under it.
    expect(await listed('samples/cam-1/0-2.jpg/')).toEqual([]);
  });

  it("gives each object's size and modification time", async () => {
    await store.put('samples/cam-1/old.jpg', new Uint8Array(123));
    const then = new Date('2026-01-02T03:04:05.000Z');
    await utimes(store.localPath('samples/cam-1/old.jpg'), then, then);
    const entries = [];
    for await (const e of store.list('samples/')) entries.push(e);
    expect(entries).toEqual([{ key: 'samples/cam-1/old.jpg', bytes: 123, modifiedAt: then }]);
  });

  it('skips the temp folder, partial files and names no key can have', async () => {
    await store.put('samples/cam-1/0-1.jpg', new Uint8Array(10));
    // An upload in progress (temp folder), a partial file beside its target, a dot file.
    await writeFile(await store.tempPath(), 'partial');
    await writeFile(join(store.root, 'samples/cam-1/0-2.jpg.tmp-0a1b2c3d4e5f'), 'partial');
    await writeFile(join(store.root, 'samples/cam-1/.hidden'), 'x');
    await writeFile(join(store.root, 'samples/cam-1/with space.jpg'), 'x');
    await mkdir(join(store.root, 'samples/.cache'), { recursive: true });
    await writeFile(join(store.root, 'samples/.cache/a.jpg'), 'x');
    expect((await stat(join(store.root, '.tmp'))).isDirectory()).toBe(true);
    expect(await listed('')).toEqual([{ key: 'samples/cam-1/0-1.jpg', bytes: 10 }]);
  });

  it('keeps listing while the lister deletes what it was given', async () => {
    const keys = Array.from({ length: 300 }, (_, i) => `samples/cam-1/0-${i}.jpg`);
    for (const key of keys) await store.put(key, new Uint8Array(1));
    const seen = new Set<string>();
    for await (const e of store.list('samples/', { pageSize: 16 })) {
      seen.add(e.key);
      await store.delete(e.key);
    }
    expect(seen).toEqual(new Set(keys));
    expect(await listed('samples/')).toEqual([]);
  });
});
