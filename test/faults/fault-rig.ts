import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { CloudApiClient } from '@linesight/api-client';
import { writeDeviceCredentials } from '@linesight/agent';
import { mjpegReplayCommand, renderFramePool } from '@linesight/firmware-sim';
import type { VerdictRecord } from '@linesight/protocol';
import { eventually } from '@linesight/testkit/eventually';
import { FaultProxy } from '../helpers/fault-proxy.ts';
import { LinesightProcess } from '../helpers/linesight-process.ts';
import { startPlantBroker, type PlantBroker } from '../helpers/plant-broker.ts';
import { LineTap } from './line-tap.ts';
import {
  measureAvailability,
  type Availability,
  type LineVerdict,
} from './verdict-availability.ts';
import { faultCamera, faultFps, faultLineGuard, frameBudgetMs } from './fault-settings.ts';

/** Distinct frames each device's camera sends in turn (rendered once per device). */
const CAMERA_FRAMES = 50;

/** One device of the rig: its data folder, its current agent process, its proxies if any. */
export interface RigDevice {
  id: string;
  dataDir: string;
  seed: number;
  agent: LinesightProcess | undefined;
  /** The agent's own HTTP endpoint (/healthz, /metrics) of the current process. */
  httpUrl: string | undefined;
  /** Agent processes started so far; the store's boot counter of the current one is `starts - 1`. */
  starts: number;
  /** Boots that ended with kill -9 (their unflushed tail is the documented in-flight window). */
  killedBoots: Set<number>;
  /** Between the agent and the cloud, when the device was provisioned behind proxies. */
  proxies: { http: FaultProxy; mqtt: FaultProxy } | undefined;
  /** Extra agent arguments for every start. */
  args: string[];
  /** Line guard mode: the current worker's pid (the process kill -9 targets). */
  workerPid: number | undefined;
  /** Line guard mode: every worker pid seen. */
  workerPids: Set<number>;
  /** Line guard mode: the store boots (workers) of each guard process, in start order. */
  guardRuns: number[][];
  /**
   * The device's camera process (the default, LINESIGHT_FAULT_CAMERA=process): its frames
   * folder and its ledger of the slots it missed itself; undefined with the in-process camera.
   */
  camera: { framesDir: string; ledger: string } | undefined;
}

/** Records figures of one device, compared with what its line received. */
export interface RecordFigures {
  lost: number;
  lostInFlight: number;
  duplicated: number;
}

/**
 * A whole line set-up for fault tests, every part a real process or socket:
 * `linesight cloud` as a child process (so it can be killed and frozen), a
 * plant MQTT broker (mosquitto) that every agent writes its verdicts to, the
 * line's subscriber on it ({@link LineTap}), and `linesight agent` processes
 * scoring synthetic frames on the model `line@1.0.0`.
 */
export class FaultRig {
  readonly adminToken = `faults-${randomBytes(16).toString('hex')}`;
  readonly devices = new Map<string, RigDevice>();
  readonly tap = new LineTap();
  readonly fps = faultFps();
  readonly budgetMs = frameBudgetMs();
  /**
   * Agents run as line guards (LINESIGHT_FAULT_LINE_GUARD, default 1): the guard owns the camera and
   * the plant output, the agent runs as its worker, and kill -9 targets the worker.
   */
  readonly lineGuard = faultLineGuard();
  /**
   * Where the camera runs: `process` (default), a camera process of its own per agent
   * process, like a real camera, sending pre-rendered synthetic frames as MJPEG with their
   * capture times (`--camera mjpeg-exec:...`); `synthetic`, rendered inside the agent (or
   * the guard) as before 2026-11-27, so its rendering counts against the agent.
   */
  readonly cameraKind = faultCamera();
  dir = '';
  cloud: LinesightProcess | undefined;
  httpUrl = '';
  mqttUrl = '';
  api!: CloudApiClient;
  broker: PlantBroker | undefined;
  readonly #running = new Set<LinesightProcess>();

  /** Starts the plant broker, the line's subscriber and the cloud, and registers `line@1.0.0` from `modelFile`. */
  async start(modelFile: string): Promise<void> {
    this.dir = await mkdtemp(join(tmpdir(), 'linesight-faults-rig-'));
    this.broker = await startPlantBroker();
    await this.tap.start(this.broker.url);
    await this.startCloud();
    await this.api.publishModel({
      name: 'line',
      version: '1.0.0',
      onnx: new Uint8Array(await readFile(modelFile)),
    });
  }

  /** Starts the cloud process; after the first start, on the same ports and data. Resolves once it listens. */
  async startCloud(): Promise<LinesightProcess> {
    const ports =
      this.httpUrl === '' ? ['0', '0'] : [new URL(this.httpUrl).port, new URL(this.mqttUrl).port];
    const cloud = new LinesightProcess(
      [
        'cloud',
        '--http-port',
        ports[0]!,
        '--mqtt-port',
        ports[1]!,
        '--data-dir',
        join(this.dir, 'cloud'),
      ],
      { LINESIGHT_ADMIN_TOKEN: this.adminToken },
    );
    this.cloud = cloud;
    this.#track(cloud);
    const ready = await cloud.waitForLog((l) => typeof l.httpUrl === 'string', 120_000);
    this.httpUrl = String(ready.httpUrl);
    this.mqttUrl = String(ready.mqttUrl);
    this.api = new CloudApiClient({ baseUrl: this.httpUrl, adminToken: this.adminToken });
    return cloud;
  }

  /** SIGKILL to the cloud; resolves once it is gone. */
  async kill9Cloud(): Promise<void> {
    const cloud = this.cloud;
    if (cloud === undefined) return;
    cloud.child.kill('SIGKILL');
    await cloud.exited;
  }

  /**
   * Provisions devices and assigns them `line@1.0.0`. With `behindProxies`,
   * each device reaches the cloud's HTTP and MQTT ports only through its own
   * {@link FaultProxy}, so the test can cut it off alone.
   */
  async provision(
    ids: readonly string[],
    options: { behindProxies?: boolean; args?: string[] } = {},
  ): Promise<RigDevice[]> {
    const made: RigDevice[] = [];
    for (const id of ids) {
      const dataDir = join(this.dir, 'agents', id);
      const creds = await this.api.provisionDevice(id);
      await writeDeviceCredentials(join(dataDir, 'device.json'), creds);
      let proxies: RigDevice['proxies'];
      if (options.behindProxies === true) {
        proxies = { http: new FaultProxy(this.httpUrl), mqtt: new FaultProxy(this.mqttUrl) };
        await proxies.http.start();
        await proxies.mqtt.start();
      }
      const seed = this.devices.size + 1;
      let camera: RigDevice['camera'];
      if (this.cameraKind === 'process') {
        const framesDir = join(this.dir, 'cameras', id, 'frames');
        await mkdir(framesDir, { recursive: true });
        const frames = await renderFramePool({
          seed,
          width: 256,
          height: 256,
          defectRate: 0.1,
          count: CAMERA_FRAMES,
        });
        await Promise.all(
          frames.map((jpeg, i) =>
            writeFile(join(framesDir, `${String(i).padStart(4, '0')}.jpg`), jpeg),
          ),
        );
        camera = { framesDir, ledger: join(this.dir, 'cameras', id, 'missed.txt') };
      }
      const device: RigDevice = {
        id,
        dataDir,
        seed,
        agent: undefined,
        httpUrl: undefined,
        starts: 0,
        killedBoots: new Set(),
        proxies,
        args: options.args ?? [],
        workerPid: undefined,
        workerPids: new Set(),
        guardRuns: [],
        camera,
      };
      this.devices.set(id, device);
      made.push(device);
    }
    await this.api.createRollout({ model: 'line', version: '1.0.0', devices: [...ids] });
    return made;
  }

  device(id: string): RigDevice {
    const d = this.devices.get(id);
    if (d === undefined) throw new Error(`no device ${id} in the rig`);
    return d;
  }

  /**
   * Starts a device's agent process and waits until its camera runs. In line guard mode,
   * with the guard still running (its worker was killed), waits for the guard's next worker.
   */
  async startAgent(id: string, extra: string[] = []): Promise<LinesightProcess> {
    const d = this.device(id);
    const running =
      d.agent !== undefined && d.agent.child.exitCode === null && d.agent.child.signalCode === null;
    if (this.lineGuard && running) {
      await this.#nextWorker(d, d.agent!);
      return d.agent!;
    }
    const config = join(d.dataDir, 'line.json');
    await writeFile(
      config,
      JSON.stringify({
        http: { port: 0 },
        outputs: [{ kind: 'mqtt', url: this.broker!.url, qos: 1 }],
      }),
    );
    const agent = new LinesightProcess([
      'agent',
      '--device-id',
      id,
      '--cloud',
      d.proxies?.http.url(this.httpUrl) ?? this.httpUrl,
      '--mqtt',
      d.proxies?.mqtt.url(this.mqttUrl) ?? this.mqttUrl,
      '--camera',
      this.#cameraSpec(d),
      '--fps',
      String(this.fps),
      '--data-dir',
      d.dataDir,
      '--config',
      config,
      '--telemetry-interval',
      '1',
      // Restarts in a fault test are the fault, not a crash loop of the version.
      '--stable-after',
      '2',
      '--crash-loop-starts',
      '50',
      ...(this.lineGuard
        ? ['--line-guard', '--verdict-budget-ms', String(guardBudgetMs(this.budgetMs))]
        : []),
      ...d.args,
      ...extra,
    ]);
    d.agent = agent;
    this.#track(agent);
    const listening = await agent.waitForLog(
      (l) => l.msg === 'agent http endpoint listening',
      120_000,
    );
    d.httpUrl = String(listening.url);
    if (this.lineGuard) {
      d.guardRuns.push([]);
      await this.#nextWorker(d, agent);
      return agent;
    }
    d.starts++;
    await agent.waitForLog((l) => l.msg === 'agent started', 120_000);
    return agent;
  }

  /**
   * The agent's `--camera`: a camera process of the device's own (its frames, the rig's frame
   * rate, its ledger), started and stopped by the agent's mjpeg-exec camera; or in-process.
   */
  #cameraSpec(d: RigDevice): string {
    if (d.camera === undefined) return `synthetic:${d.seed}`;
    const { framesDir, ledger } = d.camera;
    return `mjpeg-exec:${mjpegReplayCommand({ framesDir, fps: this.fps, ledger })}`;
  }

  /** Due times of the slots a device's camera process missed itself (starved), from its ledger. */
  cameraMissedAtMs(id: string): number[] {
    const camera = this.device(id).camera;
    if (camera === undefined) return [];
    let text: string;
    try {
      text = readFileSync(camera.ledger, 'utf8');
    } catch {
      return []; // No ledger yet: it has missed nothing.
    }
    return text
      .split('\n')
      .filter((line) => line.startsWith('late '))
      .map((line) => Number(line.slice(5)));
  }

  /** Line guard mode: waits until the guard's next worker takes frames; it is the next store boot. */
  async #nextWorker(d: RigDevice, guard: LinesightProcess): Promise<void> {
    const ready = await guard.waitForLog(
      (l) => l.msg === 'guard worker ready' && !d.workerPids.has(Number(l.workerPid)),
      120_000,
    );
    const pid = Number(ready.workerPid);
    d.workerPids.add(pid);
    d.workerPid = pid;
    d.guardRuns.at(-1)!.push(d.starts);
    d.starts++;
  }

  /**
   * SIGKILL to a device's agent; resolves once it is gone. In line guard mode, to the
   * guard's worker (the scoring process); the guard goes on and starts another.
   */
  async kill9Agent(id: string): Promise<void> {
    const d = this.device(id);
    const agent = d.agent;
    if (agent === undefined) return;
    if (this.lineGuard) {
      const pid = d.workerPid;
      if (pid === undefined) throw new Error(`${id}: no worker to kill`);
      process.kill(pid, 'SIGKILL');
      await agent.waitForLog((l) => l.msg === 'guard worker exited' && l.workerPid === pid, 60_000);
      d.killedBoots.add(d.starts - 1);
      d.workerPid = undefined;
      return;
    }
    agent.child.kill('SIGKILL');
    await agent.exited;
    d.killedBoots.add(d.starts - 1);
    d.agent = undefined;
    d.httpUrl = undefined;
  }

  /** The agent's own view: is its MQTT link to the cloud up? */
  async cloudConnected(id: string): Promise<boolean> {
    const url = this.device(id).httpUrl;
    if (url === undefined) return false;
    try {
      const health = (await (await fetch(`${url}/healthz`)).json()) as { cloudConnected?: boolean };
      return health.cloudConnected === true;
    } catch {
      return false;
    }
  }

  /** Waits until every listed device's agent has its cloud link up; resolves with the time it was seen (ms). */
  async allConnected(ids: readonly string[], timeoutMs = 180_000): Promise<number> {
    await eventually(
      async () =>
        (await Promise.all(ids.map((id) => this.cloudConnected(id)))).every(Boolean)
          ? true
          : undefined,
      { what: `${ids.join(', ')} connected to the cloud`, timeoutMs, intervalMs: 100 },
    );
    return Date.now();
  }

  /** Waits until each device's line got a verdict of a frame captured at or after `atMs`. */
  async lineCaughtUp(ids: readonly string[], atMs: number, timeoutMs = 60_000): Promise<void> {
    await eventually(() => (this.tap.caughtUp(ids, atMs) ? true : undefined), {
      what: `the line to get verdicts of frames captured after ${new Date(atMs).toISOString()}`,
      timeoutMs,
      intervalMs: 50,
    });
  }

  /** What each device's line received over [fromMs, toMs), measured with the rig's frame rate and budget. */
  availability(ids: readonly string[], fromMs: number, toMs: number): Availability[] {
    return ids.map((id) =>
      measureAvailability(this.tap.of(id), {
        fps: this.fps,
        budgetMs: this.budgetMs,
        fromMs,
        toMs,
        cameraMissedAtMs: this.cameraMissedAtMs(id),
      }),
    );
  }

  /** Verdict-log rows of `boots` captured before `beforeMs` still in the device's store (not yet acknowledged by the broker). */
  storeBacklog(id: string, boots: readonly number[], beforeMs = Number.MAX_SAFE_INTEGER): number {
    const db = new Database(join(this.device(id).dataDir, 'store', 'store.sqlite'), {
      readonly: true,
      fileMustExist: true,
    });
    try {
      const row = db
        .prepare(
          `SELECT COUNT(*) AS n FROM verdicts WHERE boot IN (${boots.map(() => '?').join(',')}) AND at < ?`,
        )
        .get(...boots, new Date(Math.min(beforeMs, 8.64e15)).toISOString()) as { n: number };
      return row.n;
    } finally {
      db.close();
    }
  }

  /** The cloud's verdict-log records of a device, oldest first. */
  async cloudRecords(id: string): Promise<VerdictRecord[]> {
    const res = await fetch(`${this.httpUrl}/v1/edge/verdicts?deviceId=${id}&limit=10000`, {
      headers: { authorization: `Bearer ${this.adminToken}` },
    });
    if (!res.ok) throw new Error(`GET /v1/edge/verdicts: HTTP ${res.status} ${await res.text()}`);
    return ((await res.json()) as { records: VerdictRecord[] }).records;
  }

  /**
   * Compares a device's verdict log in the cloud with what its line received,
   * for the agent processes (boots) that ended: waits until their rows left
   * the store and the cloud holds them. A frame the line got but the cloud
   * did not is lost; after the last record of a boot that ended with kill -9
   * it is in the documented in-flight window (rows not yet flushed to disk).
   * Only frames captured in [`fromMs`, `beforeMs`) count (a running boot's
   * newest rows are still on their way). With `cloudKilledAtMs`, frames
   * captured in the 5 s before a kill -9 of the cloud that it never stored
   * are in its in-flight window too: the embedded broker acknowledges a
   * batch before the ingest's next write (every 50 ms) commits it.
   */
  async recordFigures(
    id: string,
    boots: readonly number[],
    window: { fromMs?: number; beforeMs?: number; cloudKilledAtMs?: number } = {},
  ): Promise<RecordFigures> {
    const fromMs = window.fromMs ?? 0;
    const beforeMs = window.beforeMs ?? Number.MAX_SAFE_INTEGER;
    const killedAt = window.cloudKilledAtMs;
    const d = this.device(id);
    // Under a line guard a worker's verdicts reach the line in its guard's frame numbering, and
    // the guard's unknowns are written by the next worker: every boot of the device counts.
    if (this.lineGuard) boots = d.guardRuns.flat();
    if (boots.length === 0) return { lost: 0, lostInFlight: 0, duplicated: 0 };
    await eventually(() => (this.storeBacklog(id, boots, beforeMs) === 0 ? true : undefined), {
      what: `${id}: verdict rows of boots ${boots.join(', ')} acknowledged`,
      timeoutMs: 180_000,
      intervalMs: 250,
    });
    const segments = splitProcesses(this.tap.of(id));
    const figures = (all: VerdictRecord[]): RecordFigures & { complete: boolean } => {
      if (this.lineGuard) return guardRecordFigures(d, segments, all, fromMs, beforeMs);
      const records = all.filter((r) => Date.parse(r.at) < beforeMs);
      let lost = 0;
      let lostInFlight = 0;
      let duplicated = 0;
      let complete = true;
      for (const boot of boots) {
        const rows = records.filter((r) => r.boot === boot);
        const frames = new Set(rows.map((r) => r.frameSeq));
        duplicated += rows.length - new Set(rows.map((r) => r.seq)).size;
        const maxSeq = Math.max(-1, ...rows.map((r) => r.seq));
        if (maxSeq + 1 !== new Set(rows.map((r) => r.seq)).size) complete = false;
        const lastFrame = Math.max(-1, ...frames);
        const seen = (segments[boot] ?? []).filter((v) => {
          const at = Date.parse(v.result.capturedAt);
          return at >= fromMs && at < beforeMs;
        });
        const missing = new Map<number, number>();
        for (const v of seen)
          if (!frames.has(v.result.seq)) missing.set(v.result.seq, Date.parse(v.result.capturedAt));
        for (const [seq, at] of missing) {
          if (seq > lastFrame && d.killedBoots.has(boot)) lostInFlight++;
          else if (killedAt !== undefined && at <= killedAt && at >= killedAt - 5000)
            lostInFlight++;
          else lost++;
        }
      }
      return {
        lost,
        lostInFlight,
        duplicated,
        complete: complete && lost + lostInFlight === 0,
      };
    };
    // Acknowledged by the broker, stored by the cloud's ingest a moment later: a hole never
    // closes, so a lost record shows up as this wait running out.
    let last = figures(await this.cloudRecords(id));
    if (!last.complete) {
      await eventually(
        async () => {
          last = figures(await this.cloudRecords(id));
          return last.complete ? true : undefined;
        },
        { what: `${id}: every record in the cloud`, timeoutMs: 30_000, intervalMs: 500 },
      ).catch(() => undefined);
    }
    return { lost: last.lost, lostInFlight: last.lostInFlight, duplicated: last.duplicated };
  }

  #track(p: LinesightProcess): void {
    this.#running.add(p);
    void p.exited.then(() => this.#running.delete(p));
  }

  /** Stops every agent, the cloud, proxies, the tap and the broker, and removes the folder. */
  async close(): Promise<void> {
    // Agents first (SIGCONT in case a test left one frozen), then the cloud.
    const all = [...this.#running];
    for (const p of all) p.child.kill('SIGCONT');
    await Promise.all(all.filter((p) => p !== this.cloud).map((p) => p.stop()));
    await this.cloud?.stop();
    for (const d of this.devices.values()) {
      await d.proxies?.http.close();
      await d.proxies?.mqtt.close();
    }
    await this.tap.close();
    await this.broker?.stop();
    if (this.dir !== '') await rm(this.dir, { recursive: true, force: true });
  }
}

/** A line guard's budget: the line's budget less a margin for the plant broker's hop. */
function guardBudgetMs(lineBudgetMs: number): number {
  return Math.max(50, Math.round(lineBudgetMs * 0.8));
}

/**
 * Record figures of a device run under line guards: per guard process (its line verdicts
 * share one frame numbering), the verdict-log rows of its workers' boots against the frames
 * its line received. A frame may be recorded by any of its workers (the guard's unknowns by
 * the worker after the one that was away); recorded twice is a duplicate. A frame missing
 * after the last row of a killed worker and before the first row of the next is in the
 * killed worker's in-flight window (its unflushed rows).
 */
function guardRecordFigures(
  d: RigDevice,
  segments: LineVerdict[][],
  all: VerdictRecord[],
  fromMs: number,
  beforeMs: number,
): RecordFigures & { complete: boolean } {
  const records = all.filter((r) => Date.parse(r.at) < beforeMs);
  let lost = 0;
  let lostInFlight = 0;
  let duplicated = 0;
  let complete = true;
  d.guardRuns.forEach((boots, run) => {
    const byBoot = new Map<number, number[]>();
    const seen = new Map<number, number>();
    for (const boot of boots) {
      const rows = records.filter((r) => r.boot === boot);
      const rowSeqs = new Set(rows.map((r) => r.seq));
      duplicated += rows.length - rowSeqs.size;
      if (Math.max(-1, ...rowSeqs) + 1 !== rowSeqs.size) complete = false;
      byBoot.set(
        boot,
        rows.map((r) => r.frameSeq),
      );
      for (const r of rows) seen.set(r.frameSeq, (seen.get(r.frameSeq) ?? 0) + 1);
    }
    for (const count of seen.values()) duplicated += count - 1;
    const inFlight = (seq: number) =>
      boots.some((boot, i) => {
        if (!d.killedBoots.has(boot)) return false;
        const last = Math.max(-1, ...(byBoot.get(boot) ?? []));
        const next = boots[i + 1];
        const first = next === undefined ? Infinity : Math.min(...(byBoot.get(next) ?? [Infinity]));
        return seq > last && seq < first;
      });
    for (const v of segments[run] ?? []) {
      const at = Date.parse(v.result.capturedAt);
      if (at < fromMs || at >= beforeMs || seen.has(v.result.seq)) continue;
      if (inFlight(v.result.seq)) lostInFlight++;
      else lost++;
    }
  });
  return { lost, lostInFlight, duplicated, complete: complete && lost + lostInFlight === 0 };
}

/** A device's received verdicts, split by the agent process that made them (in start order). */
export function splitProcesses(received: readonly LineVerdict[]): LineVerdict[][] {
  const out: LineVerdict[][] = [];
  let current: LineVerdict[] = [];
  let maxSeq = -1;
  let maxCapturedMs = Number.NEGATIVE_INFINITY;
  for (const v of received) {
    const capturedMs = Date.parse(v.result.capturedAt);
    if (v.result.seq < maxSeq && capturedMs > maxCapturedMs) {
      out.push(current);
      current = [];
      maxSeq = -1;
    }
    current.push(v);
    maxSeq = Math.max(maxSeq, v.result.seq);
    maxCapturedMs = Math.max(maxCapturedMs, capturedMs);
  }
  out.push(current);
  return out;
}
