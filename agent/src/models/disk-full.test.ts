// A full data disk on the device: the agent must still start on its live
// model, refuse a download that does not fit with ERR_AGENT_DISK_FULL (never
// sit in `downloading`), and still roll back. Runs on a real 1 MiB tmpfs when
// the test is root and may mount; otherwise on a temp folder with the full
// disk injected through the free-space probe (the test names say which).
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import pino from 'pino';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ModelSlot, type ScoringModel } from '@linesight/vision';
import {
  isLinesightError,
  type AgentPhase,
  type DesiredState,
  type Manifest,
  type ModelAssignment,
} from '@linesight/protocol';
import { testManifest } from '@linesight/testkit/manifests';
import { testSigner } from '@linesight/testkit/signer';
import { ModelStore } from './model-store.ts';
import { ModelUpdater } from './model-updater.ts';
import type { FreeBytesProbe } from './disk-space.ts';
import { fillDisk, smallDisk, type SmallDisk } from './small-disk.ts';

const DISK_BYTES = 1024 * 1024;
const MARGIN_BYTES = 64 * 1024;
const signer = testSigner();
const artifacts = new Map<string, Uint8Array>();

let server: Server;
let base: string;
let disk: SmallDisk;
let store: ModelStore;
let slot: ModelSlot<ScoringModel, Manifest>;
let updater: ModelUpdater;
let revision = 0;
/** Free space the injected probe reports when no real small disk could be mounted. */
let injectedFreeBytes = Number.MAX_SAFE_INTEGER;
const refused: { version: string | undefined; code: string }[] = [];
const phases: AgentPhase[] = [];

interface Version {
  manifest: Manifest;
  assignment: ModelAssignment;
  bytes: Uint8Array;
}

/** A version whose artifact the test server serves; `size` pads it to that many bytes. */
function version(v: string, size?: number): Version {
  const text = new TextEncoder().encode(`model ${v}`);
  const bytes = new Uint8Array(Math.max(size ?? 0, text.length));
  bytes.set(text);
  const manifest = signer.manifestOf(v, bytes);
  artifacts.set(manifest.sha256, bytes);
  return {
    manifest,
    bytes,
    assignment: { signed: signer.sign(manifest), artifactUrl: `/a/${manifest.sha256}` },
  };
}

function desired(model: Version): DesiredState {
  return signer.desired(model.assignment, ++revision);
}

async function apply(model: Version): Promise<void> {
  updater.apply(desired(model));
  await updater.idle();
}

/** `probe` overrides the free-space probe; by default it is injected only where no disk was mounted. */
function makeUpdater(probe?: FreeBytesProbe): ModelUpdater {
  store = new ModelStore(disk.dir);
  slot = new ModelSlot<ScoringModel, Manifest>();
  return new ModelUpdater({
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
    diskMarginBytes: MARGIN_BYTES,
    ...(probe
      ? { freeBytes: probe }
      : disk.real
        ? {}
        : { freeBytes: async () => injectedFreeBytes }),
    retryDelayMs: () => 1,
    logger: pino({ level: 'silent' }),
    loadModel: async () =>
      ({
        contract: { inputSpec: testManifest('0.0.0', '').inputSpec },
        run: async () => ({ score: 0.1 }),
        close: async () => undefined,
      }) as unknown as ScoringModel,
    hooks: {
      phase: (p) => phases.push(p),
      activated: () => undefined,
      refused: (m, err) =>
        refused.push({ version: m?.version, code: isLinesightError(err) ? err.code : 'none' }),
      handled: () => undefined,
    },
  });
}

beforeAll(async () => {
  server = createServer((req, res) => {
    const bytes = artifacts.get((req.url ?? '').replace('/a/', ''));
    if (bytes === undefined) res.writeHead(404).end();
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
  disk = await smallDisk(DISK_BYTES);
  injectedFreeBytes = Number.MAX_SAFE_INTEGER;
  refused.length = 0;
  phases.length = 0;
  updater = makeUpdater();
});

afterEach(async () => {
  await updater.close();
  await slot.close();
  await disk.close();
});

const probeDisk = await smallDisk(4096);
const canMount = probeDisk.real;
await probeDisk.close();

describe(`a full data disk (${canMount ? 'on a real 1 MiB tmpfs' : 'with the full disk injected'})`, () => {
  it('does not stop the next start: the part file that filled the disk is removed and the live model restored', async () => {
    const v1 = version('1.0.0');
    await apply(v1);
    expect(slot.info?.version).toBe('1.0.0');
    await updater.close();
    await slot.close();
    // A download of the next version filled the disk before the agent died.
    const part = join(store.dir, `${'2'.repeat(64)}.onnx.part`);
    if (disk.real) await fillDisk(part);
    else {
      await writeFile(part, Buffer.alloc(200_000));
      injectedFreeBytes = 0;
    }

    updater = makeUpdater();
    await updater.restore();
    expect(slot.info?.version).toBe('1.0.0');
    expect(await readdir(store.dir)).not.toContain(`${'2'.repeat(64)}.onnx.part`);
  });

  it('refuses a download that does not fit with ERR_AGENT_DISK_FULL, leaves no part file, and still rolls back', async () => {
    const v1 = version('1.0.0');
    const v2 = version('2.0.0');
    await apply(v1);
    await apply(v2);
    expect(slot.info?.version).toBe('2.0.0');
    phases.length = 0;

    const big = version('3.0.0', 2 * DISK_BYTES);
    if (!disk.real) injectedFreeBytes = DISK_BYTES / 2;
    await apply(big);
    expect(refused).toEqual([{ version: '3.0.0', code: 'ERR_AGENT_DISK_FULL' }]);
    expect(slot.info?.version).toBe('2.0.0');
    // Back to running the live model: never left in `downloading`.
    expect(phases.at(-1)).toBe('running');
    expect((await readdir(store.dir)).filter((n) => n.endsWith('.part'))).toEqual([]);

    // Something else fills the disk; the rollback to 1.0.0 (on disk) still goes live.
    if (disk.real) await fillDisk(join(disk.dir, 'filler'));
    else injectedFreeBytes = 0;
    refused.length = 0;
    await apply(v1);
    expect(slot.info?.version).toBe('1.0.0');
    expect((await store.readState()).active?.manifest.version).toBe('1.0.0');
    if (disk.real) {
      // The state file could not be written: reported, kept in memory.
      expect(refused).toEqual([{ version: undefined, code: 'ERR_AGENT_DISK_FULL' }]);
      expect((await readdir(store.dir)).filter((n) => n.includes('.tmp-'))).toEqual([]);
    }
  });

  // Needs a real filesystem to fill: a free-space probe cannot make a write fail.
  it.runIf(canMount)(
    'turns ENOSPC in the middle of a download into ERR_AGENT_DISK_FULL and removes the part file',
    async () => {
      const v1 = version('1.0.0');
      await apply(v1);
      const big = version('3.0.0', 2 * DISK_BYTES);
      // The free-space check passes (something else fills the disk meanwhile): the write hits ENOSPC.
      await updater.close();
      await slot.close();
      updater = makeUpdater(async () => Number.MAX_SAFE_INTEGER);
      await updater.restore();
      expect(slot.info?.version).toBe('1.0.0');
      await apply(big);
      expect(refused.at(-1)).toEqual({ version: '3.0.0', code: 'ERR_AGENT_DISK_FULL' });
      expect(slot.info?.version).toBe('1.0.0');
      expect((await readdir(store.dir)).filter((n) => n.endsWith('.part'))).toEqual([]);
    },
  );
});
