import { mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isLinesightError } from '@linesight/protocol';
import { KeyRing } from '../signing/key-ring.ts';
import { AuditLog } from '../registry/audit-log.ts';
import { LocalBlobStore } from '../blobs/local-blob-store.ts';
import { ModelService } from '../models/model-service.ts';
import { openRegistryDatabase, type RegistryDatabase } from '../registry/database.ts';
import { ModelRegistry } from '../registry/model-registry.ts';
import { ModelServer } from './model-server.ts';
import { greyImage, meanScoreOnnx } from '@linesight/testkit/onnx';

let dir: string;
let db: RegistryDatabase;
let models: ModelRegistry;
let blobs: LocalBlobStore;
let image: Buffer;
const servers: ModelServer[] = [];
const logger = pino({ level: process.env.TEST_LOG ?? 'silent' });

function server(options: ConstructorParameters<typeof ModelServer>[0]['options'] = {}) {
  const s = new ModelServer({ models, blobs, logger, options });
  servers.push(s);
  return s;
}

async function codeOf(promise: Promise<unknown>): Promise<string | undefined> {
  try {
    await promise;
  } catch (err) {
    return isLinesightError(err) ? err.code : String(err);
  }
  return undefined;
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'linesight-model-server-'));
  db = openRegistryDatabase(join(dir, 'registry.sqlite'));
  models = new ModelRegistry(db);
  blobs = new LocalBlobStore(join(dir, 'blobs'));
  const service = new ModelService({
    registry: models,
    blobs,
    keys: await KeyRing.open(dir),
    audit: new AuditLog(db),
  });
  for (const [name, version, threshold] of [
    ['a', '1.0.0', 0.1],
    ['a', '2.0.0', 0.2],
    ['a', '1.5.0', 0.15],
    ['b', '1.0.0', 0.3],
  ] as const) {
    await service.register({
      name,
      version,
      onnx: meanScoreOnnx({ side: 8, threshold }),
      actor: 'test',
    });
  }
  image = await greyImage(128, 'png', 16);
});

afterAll(async () => {
  await Promise.all(servers.map((s) => s.close()));
  db.close();
  await rm(dir, { recursive: true, force: true });
});

describe('ModelServer', () => {
  it('resolves name to its newest version until one is in production', () => {
    const s = server();
    expect(s.resolve('a').version).toBe('1.5.0'); // registered last
    expect(s.resolve('a@1.0.0').version).toBe('1.0.0');
    db.prepare(
      "UPDATE models SET stage = 'production' WHERE name = 'a' AND version = '1.0.0'",
    ).run();
    expect(s.resolve('a').version).toBe('1.0.0');
    db.prepare("UPDATE models SET stage = 'candidate' WHERE name = 'a'").run();
    expect(() => s.resolve(undefined)).toThrow(/2 models are registered \(a, b\)/);
    expect(() => s.resolve('a@')).toThrow(/invalid model selector/);
  });

  it('keeps a bounded number of versions loaded and closes the evicted ones', async () => {
    const s = server({ maxLoadedVersions: 2, workersPerModel: 1 });
    for (const v of ['1.0.0', '2.0.0', '1.5.0', '1.0.0']) {
      const p = await s.predict(image, `a@${v}`);
      expect(p.model.version).toBe(v);
    }
    expect(s.stats).toMatchObject({ loaded: 2, loads: 4, evictions: 2, predictions: 4 });
    // 1.0.0 was used last, so 1.5.0 stays and a hit on it loads nothing.
    await s.predict(image, 'a@1.5.0');
    expect(s.stats.loads).toBe(4);
  });

  it('finishes in-flight predictions on an evicted version before closing it', async () => {
    const s = server({ maxLoadedVersions: 1, workersPerModel: 2 });
    const burst = Array.from({ length: 8 }, () => s.predict(image, 'a@1.0.0'));
    const other = s.predict(image, 'b@1.0.0'); // evicts a@1.0.0 while its runs are in flight
    const results = await Promise.all([...burst, other]);
    expect(results.map((r) => r.model.name)).toEqual([...Array(8).fill('a'), 'b']);
    expect(s.stats).toMatchObject({ loaded: 1, evictions: 1 });
  });

  it('admits predictions in arrival order beyond maxActivePredictions', async () => {
    const s = server({ maxActivePredictions: 1 });
    await s.predict(image, 'b'); // load first, so every request below waits only for its turn
    const finished: number[] = [];
    await Promise.all(
      Array.from({ length: 6 }, (_, i) => s.predict(image, 'b').then(() => finished.push(i))),
    );
    expect(finished).toEqual([0, 1, 2, 3, 4, 5]);
  });

  it('closes after in-flight predictions and refuses new ones', async () => {
    const s = server();
    await s.predict(image, 'b');
    let finished = false;
    const running = s.predict(image, 'b').then((p) => {
      finished = true;
      return p;
    });
    await s.close();
    expect(finished).toBe(true);
    expect((await running).model.name).toBe('b');
    expect(await codeOf(s.predict(image, 'b'))).toBe('ERR_CLOUD_CONFIG');
  });

  it('reports a missing artifact and retries the load on the next request', async () => {
    const s = server();
    const model = models.get('b', '1.0.0');
    const path = blobs.localPath(model.blobKey);
    await rename(path, `${path}.away`);
    expect(await codeOf(s.predict(image, 'b@1.0.0'))).toBe('ERR_CLOUD_MODEL_UNAVAILABLE');
    await rename(`${path}.away`, path);
    expect((await s.predict(image, 'b@1.0.0')).model.name).toBe('b');
  });

  it('reports a corrupt artifact as unavailable (a server fault), not as a bad request', async () => {
    const s = server();
    const model = models.get('b', '1.0.0');
    const path = blobs.localPath(model.blobKey);
    const original = await readFile(path);
    await writeFile(path, original.subarray(0, original.length - 10));
    try {
      const err = await s.predict(image, 'b@1.0.0').catch((e: unknown) => e);
      expect(isLinesightError(err, 'ERR_CLOUD_MODEL_UNAVAILABLE')).toBe(true);
      expect((err as Error).message).toMatch(/b@1\.0\.0 is registered but cannot be loaded/);
      expect(((err as Error).cause as Error).message).toMatch(/sha256/);
    } finally {
      await writeFile(path, original);
    }
    expect((await s.predict(image, 'b@1.0.0')).model.name).toBe('b');
  });
});
