// Artifact downloads that fail or find the cloud busy. A failure is reported and retried
// with a growing backoff; a busy cloud answers 503 with Retry-After, and the agent waits
// that long (plus jitter) and asks again, without escalating its failure backoff.
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
import {
  MAX_BUSY_DELAY_MS,
  ModelUpdater,
  defaultBusyDelayMs,
  defaultRetryDelayMs,
} from './model-updater.ts';
import { downloadArtifact, retryAfterMsOf, type DownloadRequest } from './artifact-downloader.ts';
import type { SlowStep } from './step-watch.ts';
import { eventually } from '@linesight/testkit/eventually';
import { testSigner } from '@linesight/testkit/signer';

const signer = testSigner();
/**
 * Per artifact (sha256): what the server answers, one entry per request, before it serves the
 * bytes; `failing` answers 503 (no Retry-After) for ever.
 */
const script = new Map<string, { status: number; retryAfter?: string }[] | 'failing'>();
const requests = new Map<string, number>();
const artifacts = new Map<string, Uint8Array>();
let server: Server;
let base: string;
let dir: string;
let updater: ModelUpdater;
let slot: ModelSlot<ScoringModel, Manifest>;
let revision: number;
let busyWaitMs: number;
/** The updater's retry delay for failure `attempt` (1 ms unless a test says otherwise). */
let retryWaitMs: (attempt: number) => number;
const retries: number[] = [];
const busyAsked: number[] = [];
const refused: { version: string | undefined; code: string }[] = [];
const activated: string[] = [];
const logs: {
  level: number;
  msg: string;
  waitMs?: number;
  retryAfterMs?: number;
  step?: string;
  waitedSec?: number;
}[] = [];
/** The disk's fsync of a downloaded part file (a slow one in some tests). */
let syncFile: NonNullable<DownloadRequest['syncFile']>;
const slowSteps: (SlowStep & { version: string })[] = [];

function version(
  v: string,
  answers: { status: number; retryAfter?: string }[] | 'failing',
): ModelAssignment {
  const bytes = new TextEncoder().encode(`model ${v}`);
  const manifest = signer.manifestOf(v, bytes);
  artifacts.set(manifest.sha256, bytes);
  script.set(manifest.sha256, answers === 'failing' ? answers : [...answers]);
  return { signed: signer.sign(manifest), artifactUrl: `/a/${manifest.sha256}` };
}

function desired(model: ModelAssignment): DesiredState {
  return signer.desired(model, ++revision);
}

const busy = (sec: number) => ({ status: 503, retryAfter: String(sec) });
const failed: { status: number; retryAfter?: string } = { status: 503 };

beforeAll(async () => {
  server = createServer((req, res) => {
    const sha = (req.url ?? '').replace('/a/', '');
    const bytes = artifacts.get(sha);
    requests.set(sha, (requests.get(sha) ?? 0) + 1);
    const answers = script.get(sha);
    const next = answers === 'failing' ? failed : answers?.shift();
    if (bytes === undefined) res.writeHead(404).end();
    else if (next !== undefined)
      res
        .writeHead(next.status, {
          'content-type': 'application/json',
          ...(next.retryAfter === undefined ? {} : { 'retry-after': next.retryAfter }),
        })
        .end('{"error":"ERR_CLOUD_BUSY"}');
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
  dir = await mkdtemp(join(tmpdir(), 'linesight-busy-'));
  const store = new ModelStore(join(dir, 'models'));
  await mkdir(store.dir, { recursive: true });
  slot = new ModelSlot<ScoringModel, Manifest>();
  revision = 0;
  busyWaitMs = 1;
  retryWaitMs = () => 1;
  for (const list of [retries, busyAsked, refused, activated, logs, slowSteps]) list.length = 0;
  syncFile = (file) => file.sync();
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
    stepLimitMs: 20,
    syncFile: (file) => syncFile(file),
    crashLoopStarts: 3,
    retryDelayMs: (attempt) => {
      retries.push(attempt);
      return retryWaitMs(attempt);
    },
    busyDelayMs: (retryAfterMs) => {
      busyAsked.push(retryAfterMs);
      return busyWaitMs;
    },
    logger: pino(
      { level: 'debug' },
      {
        write: (line: string) => {
          const entry = JSON.parse(line) as (typeof logs)[number];
          if (
            entry.msg.includes('busy') ||
            entry.msg.includes('download failed') ||
            entry.msg.includes('step')
          )
            logs.push(entry);
        },
      },
    ),
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
      slow: (m, slow) => slowSteps.push({ ...slow, version: m.version }),
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
    const v = version('1.0.0', [failed, failed]);
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
    // A long delay for a version that never downloads: only newer desired state ends its wait.
    retryWaitMs = (attempt) => (attempt >= 2 ? 3_600_000 : 1);
    const broken = version('1.0.0', 'failing');
    updater.apply(desired(broken));
    // Wait until it sleeps before its fourth attempt (an hour): only newer state can end that.
    await eventually(() => retries.length >= 3, { what: 'three retries', intervalMs: 1 });
    updater.apply(desired(version('2.0.0', [])));
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

describe('a busy cloud (503 with Retry-After)', () => {
  it('is asked again after the time it gave, with no failure reported and no backoff step', async () => {
    const v = version('1.0.0', [busy(7), busy(12)]);
    updater.apply(desired(v));
    await updater.idle();
    expect(busyAsked).toEqual([7000, 12_000]);
    expect(retries).toEqual([]);
    expect(refused).toEqual([]);
    expect(requests.get(v.signed.manifest.sha256)).toBe(3);
    expect(activated).toEqual(['1.0.0']);
  });

  it('logs the first deferral at info with the wait, later ones at debug', async () => {
    busyWaitMs = 3;
    updater.apply(desired(version('1.0.0', [busy(2), busy(2), busy(2)])));
    await updater.idle();
    const deferred = logs.filter((l) => l.msg.includes('busy'));
    expect(deferred.map((l) => l.level)).toEqual([30, 20, 20]);
    expect(deferred[0]).toMatchObject({ retryAfterMs: 2000, waitMs: 3 });
  });

  it('does not move failures up the backoff: attempts count failures only', async () => {
    const v = version('1.0.0', [{ status: 503 }, busy(1), { status: 500 }, busy(1)]);
    updater.apply(desired(v));
    await updater.idle();
    // A 503 without Retry-After is a failure as before; so is a 500.
    expect(retries).toEqual([0, 1]);
    expect(busyAsked).toEqual([1000, 1000]);
    expect(refused).toEqual([
      { version: '1.0.0', code: 'ERR_AGENT_DOWNLOAD' },
      { version: '1.0.0', code: 'ERR_AGENT_DOWNLOAD' },
    ]);
    expect(logs.filter((l) => l.msg.includes('download failed'))).toHaveLength(2);
    expect(activated).toEqual(['1.0.0']);
  });

  it('stops waiting when newer desired state arrives', async () => {
    busyWaitMs = 3_600_000;
    const waiting = version('1.0.0', [busy(3600)]);
    updater.apply(desired(waiting));
    await eventually(() => busyAsked.length === 1, { what: 'a busy answer', intervalMs: 1 });
    updater.apply(desired(version('2.0.0', [])));
    await updater.idle();
    expect(requests.get(waiting.signed.manifest.sha256)).toBe(1);
    expect(activated).toEqual(['2.0.0']);
  });
});

describe('downloadArtifact on a 503', () => {
  async function errorOf(answer: { status: number; retryAfter?: string }) {
    const v = version('9.0.0', [answer]);
    const err = await downloadArtifact({
      url: `${base}${v.artifactUrl}`,
      manifest: v.signed.manifest,
      username: 'd1',
      password: 'secret',
      destPath: join(dir, 'dl', 'artifact.onnx'),
      timeoutMs: 5000,
    }).catch((e: unknown) => e);
    expect(isLinesightError(err, 'ERR_AGENT_DOWNLOAD')).toBe(true);
    return err as { details?: Record<string, unknown>; message: string };
  }

  it('carries the Retry-After it was given, in seconds or as an HTTP date', async () => {
    expect((await errorOf(busy(42))).details).toEqual({ status: 503, retryAfterMs: 42_000 });
    // An HTTP date an hour ahead: whatever time a busy machine takes between writing and
    // reading it, the wait read back is the hour less that time (seconds, not a race).
    const askedAt = Date.now();
    const inAnHour = new Date(askedAt + 3_600_000).toUTCString();
    const ms = (await errorOf({ status: 503, retryAfter: inAnHour })).details?.retryAfterMs;
    const elapsed = Date.now() - askedAt;
    expect(ms).toBeGreaterThanOrEqual(3_600_000 - 1000 - elapsed);
    expect(ms).toBeLessThanOrEqual(3_600_000);
  });

  it('carries none without the header, with an unreadable one, or on another status', async () => {
    expect((await errorOf({ status: 503 })).details).toEqual({ status: 503 });
    expect((await errorOf({ status: 503, retryAfter: 'soon' })).details).toEqual({ status: 503 });
    expect((await errorOf({ status: 500, retryAfter: '5' })).details).toEqual({ status: 500 });
  });
});

describe('retryAfterMsOf', () => {
  it('reads delay-seconds and HTTP dates, and nothing else', () => {
    const now = Date.parse('2026-11-27T04:00:00Z');
    expect(retryAfterMsOf('0', now)).toBe(0);
    expect(retryAfterMsOf(' 30 ', now)).toBe(30_000);
    expect(retryAfterMsOf('Fri, 27 Nov 2026 04:01:30 GMT', now)).toBe(90_000);
    // A date in the past means now.
    expect(retryAfterMsOf('Fri, 27 Nov 2026 03:00:00 GMT', now)).toBe(0);
    for (const bad of [null, '', '-5', '1.5', 'later'])
      expect(retryAfterMsOf(bad, now)).toBe(undefined);
  });
});

describe('defaultBusyDelayMs', () => {
  it('waits the Retry-After plus 0-50 % jitter, never more than 5 min', () => {
    for (let i = 0; i < 50; i++) {
      const wait = defaultBusyDelayMs(10_000);
      expect(wait).toBeGreaterThanOrEqual(10_000);
      expect(wait).toBeLessThanOrEqual(15_000);
      for (const asked of [MAX_BUSY_DELAY_MS, 3_600_000]) {
        const capped = defaultBusyDelayMs(asked);
        expect(capped).toBeGreaterThanOrEqual(MAX_BUSY_DELAY_MS / 1.5);
        expect(capped).toBeLessThanOrEqual(MAX_BUSY_DELAY_MS);
      }
    }
  });
});

describe('a download whose final fsync waits on a busy disk', () => {
  it('says so (log line, hook for the event and reported state) while it waits and when it ends, then goes live', async () => {
    let release: () => void = () => undefined;
    const disk = new Promise<void>((resolve) => (release = resolve));
    syncFile = async (file) => {
      await disk;
      await file.sync();
    };
    const v = version('1.0.0', []);
    updater.apply(desired(v));
    // Still downloading, nothing failed: only the stalled step says why it lasts.
    await eventually(() => slowSteps.length >= 2, { what: 'two stalled notices' });
    expect(activated).toEqual([]);
    expect(refused).toEqual([]);
    release();
    await updater.idle();
    expect(activated).toEqual(['1.0.0']);
    const fsync = slowSteps.filter((s) => s.step === 'fsync of the downloaded artifact of m@1.0.0');
    expect(fsync.length).toBeGreaterThanOrEqual(3);
    expect(fsync.at(-1)?.done).toBe(true);
    expect(fsync.slice(0, -1).every((s) => !s.done && s.version === '1.0.0')).toBe(true);
    const warn = logs.find((l) => l.msg.startsWith('model update step waiting beyond its limit'));
    expect(warn?.level).toBe(40);
    expect(warn?.step).toBe('fsync of the downloaded artifact of m@1.0.0');
    expect(logs.some((l) => l.msg === 'slow model update step finished')).toBe(true);
  });
});
