// The edge store on a full disk, end to end: `linesight cloud` and `linesight agent` as real
// processes, the agent's data folder on a real 40 MiB tmpfs, every frame sampled as a large
// JPEG. (1) With the cloud away, the store's own backlog fills the disk: it evicts sampled
// images (random first), keeps every verdict row, and the line's local output keeps getting
// verdicts; when the cloud is back everything not evicted arrives, and the cloud's gaps are
// exactly the counted evictions. (2) Another process fills the disk to the last block: the
// store keeps verdict rows in memory and drops samples first, the agent survives kill -9 and
// starts again on the full disk, and when space returns the held rows are written and
// forwarded without a gap. Mounting needs root (CI runs as root); elsewhere this file is
// skipped and agent/src/store/edge-store.test.ts covers the same paths on a simulated disk.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { CloudApiClient } from '@linesight/api-client';
import { writeDeviceCredentials } from '@linesight/agent';
import type { StoreState, TelemetryWindow, VerdictRecord } from '@linesight/protocol';
import { eventually } from '@linesight/testkit/eventually';
import { mountTmpfs } from '@linesight/testkit/tmpfs';
import { LinesightProcess } from '../helpers/linesight-process.ts';
import { FleetObserver } from '../helpers/observer.ts';

const models = inject('models');
const ID = 'store-full-1';
// Room for the model (2.7 MiB, plus the updater's 16 MiB margin when it downloads) and a backlog.
const DISK_BYTES = 40 * 1024 * 1024;
const adminToken = `test-${randomBytes(16).toString('hex')}`;

const dir = await mkdtemp(join(tmpdir(), 'linesight-store-full-'));
const agentDir = join(dir, 'agent');
await mkdir(agentDir);
const disk = mountTmpfs(agentDir, DISK_BYTES);
const mounted = disk !== undefined;
// Said, not hidden behind a skipped placeholder: CI runs as root and runs the tests below.
if (!mounted)
  console.warn(
    'edge-store-disk-full: not run here, mounting a tmpfs needs root; agent/src/store/edge-store.test.ts covers the policy on a simulated disk',
  );
const filler = join(agentDir, 'filler.bin');

let cloud: LinesightProcess | undefined;
let agent: LinesightProcess | undefined;
let api: CloudApiClient;
let httpUrl: string;
let mqttUrl: string;
let ports: { http: string; mqtt: string };
let observer = new FleetObserver();

async function startCloud(httpPort: string, mqttPort: string): Promise<void> {
  cloud = new LinesightProcess(
    ['cloud', '--http-port', httpPort, '--mqtt-port', mqttPort, '--data-dir', join(dir, 'cloud')],
    { LINESIGHT_ADMIN_TOKEN: adminToken },
  );
  const ready = await cloud.waitForLog((l) => typeof l.httpUrl === 'string', 90_000);
  httpUrl = ready.httpUrl as string;
  mqttUrl = ready.mqttUrl as string;
}

/** Starts the agent; resolves with its local HTTP endpoint once it scores. */
async function startAgent(): Promise<string> {
  agent = new LinesightProcess([
    'agent',
    '--device-id',
    ID,
    '--cloud',
    httpUrl,
    '--mqtt',
    mqttUrl,
    // Large, noisy frames: each sampled JPEG takes tens of KiB, so the disk fills in a minute.
    '--camera',
    'synthetic:7:size=512',
    '--fps',
    '10',
    '--data-dir',
    agentDir,
    '--http-port',
    '0',
    '--telemetry-interval',
    '1',
    // The disk, not the quota, is the limit here.
    '--store-quota-mb',
    '1024',
  ]);
  const listening = await agent.waitForLog((l) => l.msg === 'agent http endpoint listening');
  await agent.waitForLog((l) => l.msg === 'agent started', 90_000);
  return String(listening.url);
}

/** The newest frame seq on the agent's local verdict output (the line's side, no cloud involved). */
async function newestLocalVerdict(localUrl: string): Promise<number> {
  const body = (await (await fetch(`${localUrl}/verdicts?limit=1`)).json()) as {
    verdicts: { seq: number }[];
  };
  return body.verdicts[0]?.seq ?? -1;
}

/** Waits until the line's local output has `more` verdicts beyond now. */
async function localVerdictsFlow(localUrl: string, more: number, what: string): Promise<void> {
  const from = await newestLocalVerdict(localUrl);
  await eventually(async () => (await newestLocalVerdict(localUrl)) >= from + more, {
    what: `${more} more verdicts on the local output ${what}`,
    timeoutMs: 60_000,
  });
}

/** Store counters persisted in the agent's store file (readable while the cloud is away). */
function persistedEvictions(): Record<string, number> {
  const db = new Database(join(agentDir, 'store', 'store.sqlite'), {
    readonly: true,
    fileMustExist: true,
  });
  try {
    const row = db.prepare("SELECT value FROM meta WHERE key = 'evictions'").get() as
      { value: string } | undefined;
    return row === undefined ? {} : (JSON.parse(row.value) as Record<string, number>);
  } finally {
    db.close();
  }
}

function storeState(): StoreState | undefined {
  return observer.reported.get(ID)?.edgeData?.store;
}

async function get<T>(path: string): Promise<T> {
  const response = await fetch(`${httpUrl}${path}`, {
    headers: { authorization: `Bearer ${adminToken}` },
  });
  if (!response.ok) throw new Error(`GET ${path}: HTTP ${response.status}`);
  return (await response.json()) as T;
}

async function cloudVerdicts(boot: number): Promise<number[]> {
  const seqs: number[] = [];
  let from = 0;
  for (;;) {
    const page = (
      await get<{ records: VerdictRecord[] }>(
        `/v1/edge/verdicts?deviceId=${ID}&limit=10000&from=${new Date(from).toISOString()}`,
      )
    ).records;
    seqs.push(...page.filter((r) => r.boot === boot).map((r) => r.seq));
    if (page.length < 10_000) break;
    from = Date.parse(page.at(-1)?.at ?? '') + 1;
  }
  return [...new Set(seqs)].sort((a, b) => a - b);
}

async function cloudSamples(boot: number): Promise<number[]> {
  const list = (
    await get<{ samples: { boot: number; seq: number }[] }>(
      `/v1/samples?deviceId=${ID}&limit=10000`,
    )
  ).samples;
  return list.filter((s) => s.boot === boot).map((s) => s.seq);
}

async function cloudWindows(boot: number): Promise<TelemetryWindow[]> {
  return (
    await get<{ windows: TelemetryWindow[] }>(`/v1/edge/windows?deviceId=${ID}&limit=10000`)
  ).windows.filter((w) => w.boot === boot);
}

/** `eventually`, failing with the agent's last log lines and reported store state. */
async function waitFor<T>(
  check: () => Promise<T | undefined | false> | T | undefined | false,
  what: string,
  timeoutMs: number,
): Promise<T> {
  return eventually(check, { what, timeoutMs }).catch((err: unknown) => {
    const r = observer.reported.get(ID);
    throw new Error(
      `${String(err)}; reported model ${JSON.stringify(r?.model)}, edge data ${JSON.stringify(r?.edgeData)}; agent:\n${agent?.text
        .filter((l) => !l.includes('"level":30') || l.includes('store') || l.includes('model'))
        .slice(-15)
        .join('\n')}`,
    );
  });
}

function gapFree(seqs: number[]): boolean {
  return seqs.every((s, i) => s === i);
}

const SAMPLE_EVERYTHING = {
  windowSec: 1,
  sampling: {
    randomShare: 1,
    capsPerHour: { defect: 100_000, uncertain: 100_000, random: 100_000, unknown: 100_000 },
    jpegQuality: 100,
    maxSide: 512,
  },
};
const SAMPLE_NOTHING = {
  windowSec: 1,
  sampling: { randomShare: 0, defects: false, uncertaintyBand: 0 },
};

beforeAll(async () => {
  if (!mounted) return;
  await startCloud('0', '0');
  ports = { http: new URL(httpUrl).port, mqtt: new URL(mqttUrl).port };
  api = new CloudApiClient({ baseUrl: httpUrl, adminToken });
  await observer.start(mqttUrl, adminToken);
  const creds = await api.provisionDevice(ID);
  await writeDeviceCredentials(join(agentDir, 'device.json'), { ...creds, cloudUrl: httpUrl });
  await api.publishModel({
    name: 'm',
    version: '1.0.0',
    onnx: new Uint8Array(await readFile(models.v1)),
  });
  await api.createRollout({ model: 'm', version: '1.0.0', devices: [ID] });
  await api.setEdgeSettings(ID, SAMPLE_EVERYTHING);
}, 420_000);

afterAll(async () => {
  await agent?.stop();
  await observer.close();
  await cloud?.stop();
  disk?.unmount();
  await rm(dir, { recursive: true, force: true });
});

describe.runIf(mounted)('the edge store on a full disk (a real 40 MiB tmpfs)', () => {
  it('evicts samples before verdicts when its own backlog fills the disk, and delivers the rest', async () => {
    const localUrl = await startAgent();
    await waitFor(
      () => {
        const r = observer.reported.get(ID);
        return r?.model?.version === '1.0.0' && r.edgeData?.sampling.randomShare === 1;
      },
      'the agent scoring on 1.0.0 and sampling every frame',
      180_000,
    );

    // The cloud goes away; the store keeps everything until the disk is full.
    await cloud?.stop();
    cloud = undefined;
    await agent?.waitForLog((l) => l.msg === 'mqtt connection lost; reconnecting with backoff');
    await waitFor(
      () => (persistedEvictions().random ?? 0) >= 20,
      'random samples evicted for room on the disk',
      180_000,
    );
    // The frame loop and the line's output do not notice.
    await localVerdictsFlow(localUrl, 30, 'while the disk is full');
    expect(persistedEvictions().verdictRowsCompacted ?? 0).toBe(0);

    await startCloud(ports.http, ports.mqtt);
    // The observer's connection ended with the cloud's broker: a new one follows the device.
    await observer.close();
    observer = new FleetObserver();
    await observer.start(mqttUrl, adminToken);
    await api.setEdgeSettings(ID, SAMPLE_NOTHING);
    await eventually(() => observer.reported.get(ID)?.edgeData?.sampling.randomShare === 0, {
      what: 'sampling stopped',
      timeoutMs: 120_000,
    });
    // Verdicts: every scored frame reached the cloud, without a gap (none was dropped for room).
    await eventually(
      async () => {
        const seqs = await cloudVerdicts(0);
        const counted = (await cloudWindows(0)).reduce(
          (n, w) => n + w.counts.good + w.counts.defect + w.counts.unknown,
          0,
        );
        return gapFree(seqs) && seqs.length >= counted && counted > 300 ? true : undefined;
      },
      { what: 'every verdict of the run in the cloud, without a gap', timeoutMs: 180_000 },
    );
    // Samples: what the cloud lacks is exactly what the store counted as evicted.
    let last = {};
    const settled = await eventually(
      async () => {
        const store = storeState();
        if (store === undefined || store.backlog.samples > 0) {
          last = { backlog: store?.backlog };
          return undefined;
        }
        const stored = (await cloudWindows(0)).reduce((n, w) => n + w.samples, 0);
        const indexed = await cloudSamples(0);
        const evicted =
          store.evictions.random +
          store.evictions.uncertain +
          store.evictions.unknown +
          store.evictions.defect;
        last = { stored, indexed: indexed.length, evicted, lostWrites: store.lostWrites };
        return indexed.length + evicted === stored ? { store, indexed, stored } : undefined;
      },
      { what: 'samples in the cloud plus counted evictions = samples stored', timeoutMs: 180_000 },
    ).catch((err: unknown) => {
      throw new Error(`${String(err)}; last seen ${JSON.stringify(last)}`);
    });
    expect(settled.store.evictions.random).toBeGreaterThanOrEqual(20);
    expect(settled.store.evictions.verdictRowsCompacted).toBe(0);
    expect(new Set(settled.indexed).size).toBe(settled.indexed.length);
    await waitFor(() => storeState()?.diskFull === false, 'the store reporting room', 120_000);
  });

  it('holds verdicts and drops samples when another process fills the disk, survives kill -9 there, and forwards without a gap when space returns', async () => {
    await api.setEdgeSettings(ID, SAMPLE_EVERYTHING);
    await eventually(() => observer.reported.get(ID)?.edgeData?.sampling.randomShare === 1, {
      what: 'sampling every frame again',
      timeoutMs: 60_000,
    });
    try {
      execFileSync('dd', ['if=/dev/zero', `of=${filler}`, 'bs=64k'], { stdio: 'ignore' });
    } catch {
      // dd stops with "No space left on device": the disk is full.
    }
    await waitFor(() => storeState()?.diskFull === true, 'the store reporting a full disk', 60_000);

    // kill -9 on the full disk, and a start there: the agent scores and its output flows.
    agent?.child.kill('SIGKILL');
    await agent?.exited;
    const localUrl = await startAgent();
    await localVerdictsFlow(localUrl, 30, 'after a start on the full disk');
    await waitFor(
      () => storeState()?.diskFull === true,
      'the restarted store reporting a full disk',
      60_000,
    );
    // While the disk is full, frames keep being scored and their verdict rows are held.
    await localVerdictsFlow(localUrl, 30, 'while another process holds the disk');

    await rm(filler);
    await waitFor(
      () => storeState()?.diskFull === false,
      'the store reporting room again',
      120_000,
    );
    // Every verdict row of the run on the full disk reaches the cloud once; what is missing of
    // its sequence is what the store counted (rows compacted into per-minute counts, which the
    // documented order allows once no random or uncertain sample is left, or lost writes).
    const { seqs, state } = await waitFor(
      async () => {
        const seqs = await cloudVerdicts(1);
        const state = storeState();
        if (state === undefined || seqs.length < 60 || state.backlog.verdicts > 100)
          return undefined;
        const missing = (seqs.at(-1) as number) + 1 - seqs.length;
        return missing <= state.evictions.verdictRowsCompacted + state.lostWrites
          ? { seqs, state }
          : undefined;
      },
      'the verdicts of the run on the full disk in the cloud, gaps only as counted',
      180_000,
    );
    expect(new Set(seqs).size).toBe(seqs.length);
    expect(state.evictions.random).toBeGreaterThan(0);
  });
});
