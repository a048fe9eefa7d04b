import { fork, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { Command } from 'commander';
import { CloudApiClient } from '@linesight/api-client';
import { readModelContract, withModelContract } from '@linesight/vision';
import { parsePositive, parsePositiveInt } from '../options.ts';
import { progressLine } from '../progress.ts';
import { fleetInbox, fleetProcessEnv } from '../fleet-process.ts';
import { installShutdown, signalExitCode } from '../shutdown.ts';
import {
  processRssMb,
  summarizeRss,
  rssGrowthMbPerHour,
  type RssSample,
} from '../soak/rss-trend.ts';
import {
  soakFleetArgs,
  type SoakCommand,
  type SoakDeviceStats,
  type SoakFleetMessage,
} from '../soak/soak-fleet-worker.ts';
import { tinyModel } from './bench-rollout.ts';

const BIN = fileURLToPath(new URL('../../bin/linesight.js', import.meta.url));
const FLEET = fileURLToPath(new URL('../../bin/soak-fleet.js', import.meta.url));
const MODEL = 'soak';
/** A child (cloud, fleet) gets this long after SIGTERM or a stop message before SIGKILL. */
const STOP_CHILD_GRACE_MS = 30_000;
/** A signal mid-soak stops both children (each within its grace) and removes the temp folder. */
const SOAK_SHUTDOWN_LIMIT_MS = 2 * STOP_CHILD_GRACE_MS + 15_000;

/** Options of one soak run. */
export interface SoakOptions {
  minutes: number;
  devices: number;
  fps: number;
  rolloutEverySec: number;
  faultEverySec: number;
  sampleEverySec: number;
  /** Seconds at the start left out of the RSS trend (start-up, first model loads). */
  warmupSec: number;
  /** How long the end waits for every verdict to reach the cloud. */
  drainTimeoutSec: number;
  /** Include every memory sample in the report. */
  series?: boolean;
}

/** `linesight soak`: a simulated fleet against a cloud for minutes, with rollouts and faults. */
export function soakCommand(): Command {
  return new Command('soak')
    .description(
      'run a simulated fleet against a cloud (each in its own process) for a while, with periodic rollouts and faults (device restarts, broker disconnects); sample memory, count errors and lost verdicts; print one JSON object',
    )
    .option('--minutes <m>', 'how long to run', parsePositive, 5)
    .option(
      '--devices <n>',
      'simulated devices (real agents on synthetic cameras)',
      parsePositiveInt,
      10,
    )
    .option('--fps <n>', 'frames per second per device', parsePositive, 2)
    .option(
      '--rollout-every <sec>',
      'start a rollout of a new model version this often',
      parsePositive,
      60,
    )
    .option(
      '--fault-every <sec>',
      'restart a device or cut its MQTT session this often',
      parsePositive,
      20,
    )
    .option('--sample-every <sec>', 'sample memory and counters this often', parsePositive, 5)
    .option(
      '--warmup <sec>',
      'seconds left out of the RSS trend (default: a fifth of the run, at most 60)',
      parsePositive,
    )
    .option(
      '--drain-timeout <sec>',
      'how long the end waits for every verdict to reach the cloud',
      parsePositive,
      120,
    )
    .option(
      '--series',
      'include every memory sample (RSS per process, simulator heap) in the report',
    )
    .option('--json', 'print the JSON object on one line')
    .action(
      async (opts: {
        minutes: number;
        devices: number;
        fps: number;
        rolloutEvery: number;
        faultEvery: number;
        sampleEvery: number;
        warmup?: number;
        drainTimeout: number;
        series?: boolean;
        json?: boolean;
      }) => {
        const result = await runSoak({
          minutes: opts.minutes,
          devices: opts.devices,
          fps: opts.fps,
          rolloutEverySec: opts.rolloutEvery,
          faultEverySec: opts.faultEvery,
          sampleEverySec: opts.sampleEvery,
          warmupSec: opts.warmup ?? Math.min(60, (opts.minutes * 60) / 5),
          drainTimeoutSec: opts.drainTimeout,
          series: opts.series === true,
        });
        progressLine('');
        console.log(opts.json ? JSON.stringify(result) : JSON.stringify(result, null, 2));
      },
    );
}

/** A `linesight cloud` child process: its URLs, and its warnings and errors counted. */
async function startCloud(dataDir: string, adminToken: string) {
  const child = spawn(
    process.execPath,
    [BIN, 'cloud', '--http-port', '0', '--mqtt-port', '0', '--data-dir', dataDir],
    {
      env: { ...process.env, LINESIGHT_ADMIN_TOKEN: adminToken },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  const logged = { warn: 0, error: 0, top: {} as Record<string, number> };
  let onUrls: ((urls: { http: string; mqtt: string }) => void) | undefined;
  const urls = new Promise<{ http: string; mqtt: string }>((resolve, reject) => {
    onUrls = resolve;
    child.once('exit', (code) =>
      reject(new Error(`the cloud exited (${code}) before it listened`)),
    );
  });
  const onLine = (line: string) => {
    let l: { level?: number; msg?: string; httpUrl?: string; mqttUrl?: string };
    try {
      l = JSON.parse(line) as typeof l;
    } catch {
      return;
    }
    if (typeof l.httpUrl === 'string' && typeof l.mqttUrl === 'string')
      onUrls?.({ http: l.httpUrl, mqtt: l.mqttUrl });
    if ((l.level ?? 0) < 40) return;
    if ((l.level ?? 0) >= 50) logged.error++;
    else logged.warn++;
    const key = (l.msg ?? '').slice(0, 80);
    if (key in logged.top || Object.keys(logged.top).length < 50)
      logged.top[key] = (logged.top[key] ?? 0) + 1;
  };
  createInterface({ input: child.stdout }).on('line', onLine);
  createInterface({ input: child.stderr }).on('line', onLine);
  const exited = new Promise<number | null>((resolve) =>
    child.once('exit', (code) => resolve(code)),
  );
  return { child, urls: await urls, logged, exited };
}

/** The fleet process and a way to ask it things. */
function fleetChannel(child: ChildProcess) {
  const { next } = fleetInbox<SoakFleetMessage>(child, { keepUnmatched: false });
  return {
    next,
    /** Sends a command and resolves with its answer. */
    ask: (command: SoakCommand, timeoutMs = 60_000): Promise<SoakFleetMessage> => {
      const answer = next(
        (m) =>
          command.type === 'stats'
            ? m.type === 'stats'
            : m.type === 'done' && m.what === command.type,
        timeoutMs,
      );
      // A fleet that is gone (stopped by a signal, or crashed) answers nothing: the answer's
      // own deadline reports it, rather than an unhandled 'error' event killing the soak.
      if (child.connected) child.send(command, () => undefined);
      return answer;
    },
  };
}

/** Verdicts the cloud holds per device (the verdict log plus compacted per-minute counts). */
async function cloudVerdicts(api: CloudApiClient): Promise<Map<string, number>> {
  // One bucket of 31 days (the largest the route allows) per device and model version.
  const buckets = await api.verdictCounts({ bucketSec: 31 * 86_400, limit: 10_000 });
  const out = new Map<string, number>();
  for (const b of buckets)
    out.set(b.deviceId, (out.get(b.deviceId) ?? 0) + b.good + b.defect + b.unknown);
  return out;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Runs a soak and resolves with its report. */
export async function runSoak(o: SoakOptions): Promise<Record<string, unknown>> {
  const dir = await mkdtemp(join(tmpdir(), 'linesight-soak-'));
  const adminToken = randomBytes(24).toString('base64url');
  const children: ChildProcess[] = [];
  let startedMs = Date.now();
  const at = () => (Date.now() - startedMs) / 1000;
  // Ctrl-C or a SIGTERM mid-soak: stop the cloud and fleet children and remove the temp
  // folder before exiting, as the end of a finished soak does.
  const uninstallShutdown = installShutdown({
    limitMs: SOAK_SHUTDOWN_LIMIT_MS,
    logger: {
      info: (details, message) =>
        progressLine(
          message === 'shutting down'
            ? `${String(details.signal)}: stopping the soak's cloud and fleet`
            : message,
          0,
        ),
      error: (details, message) =>
        progressLine(details.err === undefined ? message : `${message}: ${String(details.err)}`, 0),
    },
    close: async () => {
      for (const child of [...children].reverse()) await stopChild(child);
      await rm(dir, { recursive: true, force: true });
    },
    // A soak cut short is not a finished one: exit as the signal would have.
    exitCode: signalExitCode,
  });
  try {
    const cloud = await startCloud(join(dir, 'cloud'), adminToken);
    children.push(cloud.child);
    const api = new CloudApiClient({ baseUrl: cloud.urls.http, adminToken });
    const v1 = tinyModel();
    await api.publishModel({ name: MODEL, version: '1.0.0', onnx: v1 });

    const fleetChild = fork(
      FLEET,
      soakFleetArgs({
        cloudUrl: cloud.urls.http,
        devices: o.devices,
        dataDir: join(dir, 'fleet'),
        fps: o.fps,
        idPrefix: 'soak',
      }),
      {
        env: fleetProcessEnv(adminToken),
        stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
      },
    );
    children.push(fleetChild);
    const fleet = fleetChannel(fleetChild);
    progressLine(`starting ${o.devices} simulated devices`, 0);
    const ready = await fleet.next((m) => m.type === 'ready', 15 * 60_000);
    const fleetStartSeconds = ready.type === 'ready' ? ready.startSeconds : 0;
    // The soak's clock starts once the fleet runs: start-up is not part of the minutes asked for.
    startedMs = Date.now();

    const rss = { cloud: [] as RssSample[], simulator: [] as RssSample[], soak: [] as RssSample[] };
    const heap = [] as RssSample[];
    const rollouts: { version: string; id?: string; atSec: number; error?: string }[] = [];
    const faults = {
      restarts: 0,
      takeovers: 0,
      failed: 0,
      skippedWhileOneRan: 0,
      failures: [] as string[],
    };
    let faultInFlight: Promise<void> | undefined;
    let lastStats: Extract<SoakFleetMessage, { type: 'stats' }> | undefined;

    let skippedRollouts = 0;
    const rollout = async (k: number): Promise<boolean> => {
      const version = `1.0.${k}`;
      const previous = rollouts.filter((r) => r.id !== undefined).at(-1)?.id;
      if (previous !== undefined) {
        // One rollout at a time: the cloud refuses a second one over the same devices.
        const state = (await api.getRollout(previous, { devices: false })).state;
        if (state === 'in_progress' || state === 'pending') {
          skippedRollouts++;
          return false;
        }
      }
      try {
        if (k > 0) {
          const onnx = withModelContract(v1, {
            ...readModelContract(v1),
            training: { note: `soak ${k}` },
          });
          await api.publishModel({ name: MODEL, version, onnx });
        }
        const r = await api.createRollout({
          model: MODEL,
          version,
          waves: [
            { percent: 50, soakSec: 0 },
            { percent: 100, soakSec: 0 },
          ],
        });
        rollouts.push({ version, id: r.id, atSec: at() });
      } catch (err) {
        rollouts.push({
          version,
          atSec: at(),
          error: err instanceof Error ? err.message : String(err),
        });
      }
      return true;
    };
    const sample = async () => {
      const t = at();
      const [c, f] = await Promise.all([
        processRssMb(cloud.child.pid ?? -1),
        processRssMb(fleetChild.pid ?? -1),
      ]);
      if (c !== undefined) rss.cloud.push({ atSec: t, rssMb: c });
      if (f !== undefined) rss.simulator.push({ atSec: t, rssMb: f });
      rss.soak.push({ atSec: t, rssMb: process.memoryUsage().rss / 1024 / 1024 });
      // A busy fleet answers late; its memory is on record already, its counters can wait.
      const s = await fleet.ask({ type: 'stats' }, 20_000).catch(() => undefined);
      if (s?.type === 'stats') {
        lastStats = s;
        heap.push({ atSec: t, rssMb: s.memory.heapUsed / 1024 / 1024 });
      }
    };

    await rollout(0);
    const endMs = startedMs + o.minutes * 60_000;
    let nextSample = 0;
    let nextRollout = Date.now() + o.rolloutEverySec * 1000;
    let nextFault = Date.now() + o.faultEverySec * 1000;
    let k = 1;
    let faultNo = 0;
    while (Date.now() < endMs) {
      const now = Date.now();
      if (now >= nextSample) {
        nextSample = now + o.sampleEverySec * 1000;
        await sample();
        const sent = lastStats?.devices.reduce((n, d) => n + d.verdicts, 0) ?? 0;
        progressLine(
          `${Math.round(at())} s of ${o.minutes * 60}: cloud ${rss.cloud.at(-1)?.rssMb.toFixed(0)} MB, simulator ${rss.simulator.at(-1)?.rssMb.toFixed(0)} MB, ${sent} verdicts, ${rollouts.length} rollouts, ${faults.restarts + faults.takeovers} faults`,
          0,
        );
      }
      if (now >= nextRollout) {
        nextRollout = now + o.rolloutEverySec * 1000;
        if (await rollout(k)) k++;
      }
      if (now >= nextFault) {
        nextFault = now + o.faultEverySec * 1000;
        if (faultInFlight !== undefined) faults.skippedWhileOneRan++;
        else {
          const index = (faultNo * 7) % o.devices;
          const type = faultNo % 2 === 0 ? 'takeover' : 'restart';
          faultNo++;
          // In the background, so sampling goes on; a restart waits for the device's frames
          // in flight and its store to close: generous on a loaded host.
          faultInFlight = fleet
            .ask({ type, index }, 180_000)
            .catch((err: unknown) => ({
              type: 'done' as const,
              what: type,
              ok: false,
              message: String(err),
            }))
            .then((answer) => {
              faultInFlight = undefined;
              if (answer.type === 'done' && answer.ok)
                faults[type === 'restart' ? 'restarts' : 'takeovers']++;
              else {
                faults.failed++;
                if (faults.failures.length < 10)
                  faults.failures.push(
                    `${type} ${index}: ${answer.type === 'done' ? answer.message : ''}`,
                  );
              }
            });
        }
      }
      await sleep(Math.max(10, Math.min(nextSample, nextRollout, nextFault, endMs) - Date.now()));
    }
    await faultInFlight;
    await sample();

    // Drain: no new frames; wait until every device's backlog is acknowledged and the cloud holds every verdict.
    progressLine('draining: cameras stopped, waiting for every verdict to reach the cloud', 0);
    await fleet.ask({ type: 'pause-cameras' });
    const drainDeadline = Date.now() + o.drainTimeoutSec * 1000;
    let devices: SoakDeviceStats[] = [];
    let received = new Map<string, number>();
    let lastSent = -1;
    for (;;) {
      const s = await fleet.ask({ type: 'stats' });
      if (s.type === 'stats') devices = s.devices;
      received = await cloudVerdicts(api);
      const sent = devices.reduce((n, d) => n + d.verdicts, 0);
      const got = devices.reduce((n, d) => n + (received.get(d.deviceId) ?? 0), 0);
      const backlog = devices.reduce((n, d) => n + d.backlog, 0);
      // Done once nothing is pending and the counts are steady (frames in flight at the pause have finished).
      if (backlog === 0 && got >= sent && sent === lastSent) break;
      lastSent = sent;
      if (Date.now() > drainDeadline) break;
      await sleep(1000);
    }
    const sent = devices.reduce((n, d) => n + d.verdicts, 0);
    const perDevice = devices.map((d) => ({
      id: d.deviceId,
      sent: d.verdicts,
      got: received.get(d.deviceId) ?? 0,
      backlog: d.backlog,
    }));
    const lost = perDevice.reduce((n, d) => n + Math.max(0, d.sent - d.got), 0);
    const extra = perDevice.reduce((n, d) => n + Math.max(0, d.got - d.sent), 0);

    const states: Record<string, number> = {};
    for (const r of await api.listRollouts({ devices: false }))
      states[r.state] = (states[r.state] ?? 0) + 1;
    const final = (await fleet.ask({ type: 'stats' })) as Extract<
      SoakFleetMessage,
      { type: 'stats' }
    >;
    const memory = {
      cloud: summarizeRss(rss.cloud, o.warmupSec),
      simulator: {
        ...summarizeRss(rss.simulator, o.warmupSec),
        heapUsedFirstMb: Math.round(heap[0]?.rssMb ?? 0),
        heapUsedLastMb: Math.round(heap.at(-1)?.rssMb ?? 0),
        heapGrowthMbPerHour: Math.round(
          rssGrowthMbPerHour(heap.filter((h) => h.atSec >= o.warmupSec)),
        ),
        externalMb: Math.round(final.memory.external / 1024 / 1024),
        arrayBuffersMb: Math.round(final.memory.arrayBuffers / 1024 / 1024),
      },
      soak: summarizeRss(rss.soak, o.warmupSec),
    };
    return {
      minutes: o.minutes,
      devices: o.devices,
      fps: o.fps,
      durationSec: Math.round(at()),
      rssGrowthMbPerHour: {
        cloud: memory.cloud.rssGrowthMbPerHour,
        simulator: memory.simulator.rssGrowthMbPerHour,
        soak: memory.soak.rssGrowthMbPerHour,
      },
      lost,
      verdicts: {
        sent,
        received: perDevice.reduce((n, d) => n + d.got, 0),
        lost,
        unexpected: extra,
        backlog: perDevice.reduce((n, d) => n + d.backlog, 0),
        lostWrites: devices.reduce((n, d) => n + d.lostWrites, 0),
        droppedOverload: devices.reduce((n, d) => n + d.droppedOverload, 0),
        devicesWithMore: perDevice
          .filter((d) => d.got > d.sent)
          .map((d) => `${d.id}: ${d.got} of ${d.sent}`)
          .slice(0, 20),
        devicesWithLoss: perDevice
          .filter((d) => d.sent > d.got)
          .map((d) => d.id)
          .slice(0, 20),
      },
      memory,
      rollouts: {
        started: rollouts.filter((r) => r.id !== undefined).length,
        skippedWhileOneRan: skippedRollouts,
        refused: rollouts
          .filter((r) => r.error !== undefined)
          .map((r) => `${r.version}: ${r.error}`)
          .slice(0, 10),
        states,
      },
      faults,
      errors: { cloud: cloud.logged, simulator: final.logged },
      fleetStartSeconds: Math.round(fleetStartSeconds),
      samples: { everySec: o.sampleEverySec, warmupSec: o.warmupSec, cloud: rss.cloud.length },
      ...(o.series === true ? { series: { ...rss, simulatorHeapUsed: heap } } : {}),
    };
  } finally {
    uninstallShutdown();
    for (const child of children.reverse()) await stopChild(child);
    await rm(dir, { recursive: true, force: true });
  }
}

/** SIGTERM (or a `stop` message to the fleet), then SIGKILL after 30 s. */
async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  if (child.connected) child.send({ type: 'stop' });
  else child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), STOP_CHILD_GRACE_MS);
  await exited;
  clearTimeout(timer);
}
