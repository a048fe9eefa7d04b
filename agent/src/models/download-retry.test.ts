import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ModelSlot, type ScoringModel } from '@linesight/vision';
import {
  greyInputSpec,
  isLinesightError,
  type DesiredState,
  type Manifest,
  type ModelAssignment,
} from '@linesight/protocol';
import { ModelStore } from './model-store.ts';
import { ModelUpdater, defaultRetryDelayMs } from './model-updater.ts';
import { eventually } from '@linesight/testkit/eventually';
import { testSigner } from '@linesight/testkit/signer';

const signer = testSigner();
/** Per artifact (sha256): requests answered 503 before it is served (Infinity: never served). */
const failFirst = new Map<string, number>();
const requests = new Map<string, number>();
const artifacts = new Map<string, Uint8Array>();
let server: Server;
let base: string;
let dir: string;
let updater: ModelUpdater;
let slot: ModelSlot<ScoringModel, Manifest>;
let revision: number;
const retries: number[] = [];
const refused: { version: string | undefined; code: string }[] = [];
const activated: string[] = [];

function version(v: string, failures: number): ModelAssignment {
  const bytes = new TextEncoder().encode(`model ${v}`);
  const manifest = signer.manifestOf(v, bytes);
  artifacts.set(manifest.sha256, bytes);
  failFirst.set(manifest.sha256, failures);
  return { signed: signer.sign(manifest), artifactUrl: `/a/${manifest.sha256}` };
}

function desired(model: ModelAssignment): DesiredState {
  return signer.desired(model, ++revision);
}

beforeAll(async () => {
  server = createServer((req, res) => {
    const sha = (req.url ?? '').replace('/a/', '');
    const bytes = artifacts.get(sha);
    const seen = (requests.get(sha) ?? 0) + 1;
    requests.set(sha, seen);
    if (bytes === undefined) res.writeHead(404).end();
    else if (seen <= (failFirst.get(sha) ?? 0)) res.writeHead(503).end();
    else res.writeHead(200, { 'content-length': bytes.length }).end(bytes);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
});

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'linesight-retry-'));
  const store = new ModelStore(join(dir, 'models'));
  await mkdir(store.dir, { recursive: true });
  slot = new ModelSlot<ScoringModel, Manifest>();
  revision = 0;
  for (const list of [retries, refused, activated]) list.length = 0;
  requests.clear();
  updater = new ModelUpdater({
    cloudUrl: base,
    username: 'd1',
    password: 'secret',
    trustedKeys: () => [signer.trusted],
    store,
    slot,
    shadowSlot: new ModelSlot<ScoringModel, Manifest>(),
    watchdogMs: 200,
    downloadTimeoutMs: 5000,
    crashLoopStarts: 3,
    // A long delay for a version that never downloads: only newer desired state ends its wait.
    retryDelayMs: (attempt) => {
      retries.push(attempt);
      return attempt >= 2 ? 3_600_000 : 1;
    },
    logger: pino({ level: 'silent' }),
    loadModel: async () =>
      ({
        contract: { inputSpec: greyInputSpec(8) },
        run: async () => ({ score: 0.1 }),
        close: async () => undefined,
      }) as unknown as ScoringModel,
    hooks: {
      phase: () => undefined,
      activated: (m) => activated.push(m.version),
      refused: (m, err) =>
        refused.push({ version: m?.version, code: isLinesightError(err) ? err.code : 'none' }),
      handled: () => undefined,
    },
  });
});

afterEach(async () => {
  await updater.close();
  await slot.close();
  await rm(dir, { recursive: true, force: true });
});

describe('a failed download', () => {
  it('is reported and retried with growing attempt numbers until it succeeds', async () => {
    const v = version('1.0.0', 2);
    updater.apply(desired(v));
    await updater.idle();
    expect(retries).toEqual([0, 1]);
    expect(refused).toEqual([
      { version: '1.0.0', code: 'ERR_AGENT_DOWNLOAD' },
      { version: '1.0.0', code: 'ERR_AGENT_DOWNLOAD' },
    ]);
    expect(requests.get(v.signed.manifest.sha256)).toBe(3);
    expect(activated).toEqual(['1.0.0']);
    expect(slot.info?.version).toBe('1.0.0');
  });

  it('stops being retried when newer desired state arrives, which then goes live', async () => {
    const broken = version('1.0.0', Number.POSITIVE_INFINITY);
    updater.apply(desired(broken));
    // Wait until it sleeps before its fourth attempt (an hour): only newer state can end that.
    await eventually(() => retries.length >= 3, { what: 'three retries', intervalMs: 1 });
    updater.apply(desired(version('2.0.0', 0)));
    await updater.idle();
    expect(requests.get(broken.signed.manifest.sha256)).toBe(3);
    expect(activated).toEqual(['2.0.0']);
    expect(slot.info?.version).toBe('2.0.0');
  });
});

describe('defaultRetryDelayMs', () => {
  it('doubles from 1 s and is capped at 60 s, half of it jitter', () => {
    for (let i = 0; i < 50; i++) {
      const first = defaultRetryDelayMs(0);
      expect(first).toBeGreaterThanOrEqual(500);
      expect(first).toBeLessThanOrEqual(1000);
      const third = defaultRetryDelayMs(2);
      expect(third).toBeGreaterThanOrEqual(2000);
      expect(third).toBeLessThanOrEqual(4000);
      for (const attempt of [6, 7, 30, 1000]) {
        const capped = defaultRetryDelayMs(attempt);
        expect(capped).toBeGreaterThanOrEqual(30_000);
        expect(capped).toBeLessThanOrEqual(60_000);
      }
    }
  });
});
