import { fork, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { loadavg, setPriority, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command, InvalidArgumentError, Option } from 'commander';
import pino from 'pino';
import { CloudApiClient } from '@linesight/api-client';
import { Cloud, loadCloudConfig } from '@linesight/cloud';
import { GraphBuilder, encodeModel, intAttr, intsAttr } from '@linesight/model';
import { greyInputSpec } from '@linesight/protocol';
import { readModelContract, withModelContract } from '@linesight/vision';
import { parsePositiveInt } from '../options.ts';
import { fleetWorkerArgs, type FleetMessage } from '../bench/rollout-fleet-worker.ts';
import { fleetInbox, fleetProcessEnv, type FleetInbox } from '../fleet-process.ts';
import { progressLine } from '../progress.ts';
import {
  startMosquitto,
  type MosquittoAccounts,
  type MosquittoBroker,
} from '../bench/mosquitto-process.ts';
import { LogWarnings } from '../bench/log-warnings.ts';

/** The simulated fleet's own entry (a process of its own, so the cloud's CPU is measured alone). */
const FLEET_WORKER = fileURLToPath(new URL('../../bin/bench-rollout-fleet.js', import.meta.url));
const MODEL = 'bench-rollout';
/**
 * File descriptors one simulated device may hold in a fleet process: its MQTT socket and
 * SQLite file, WAL and shm (4, counted idle), during a download the HTTP socket, the part
 * file and the hash check's read (3 more), and a reconnect's new socket beside the closing
 * one. With 5, a 10,000-device run put 3,334 devices in a process under a 20,000 limit and
 * one process ran out (EMFILE); counted at 400 devices: 5.6 at the peak of a rollout while
 * the cloud still kept download connections alive.
 */
export const FDS_PER_SIMULATED_DEVICE = 8;
/** File descriptors a process needs beyond its devices (stdio, pipes, event loop, the cloud's own files). */
const FDS_BASE = 512;

/**
 * Nice value of the simulated-fleet processes by default. On two shared cores the cloud got
 * 12-28 % of a core beside three fleet processes and other work, its HTTP and MQTT accept
 * queues stayed full (4,097 of 4,096) and devices timed out connecting: the load generator
 * starved the system it measures. Each device would have its own CPU.
 */
export const FLEET_NICE = 5;

/** Parses a nice value for the fleet processes (0-19: they may only yield). */
export function parseNice(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 19)
    throw new InvalidArgumentError('expected a nice value from 0 to 19');
  return n;
}

/** What one measured rollout took. */
export interface RolloutTiming {
  version: string;
  /** From POST /v1/rollouts until 99% / 100% of the devices run the version (as the devices see it). */
  secondsTo99: number | null;
  secondsTo100: number | null;
  /** Devices that ran the version by the end of the measurement (all of them, unless it timed out). */
  devicesReached: number;
  /** Until the cloud's rollout state says completed (it learns from reported state). */
  secondsToCompleted: number | null;
  /** How long POST /v1/rollouts took to answer (desired state issued and stored; published in the background). */
  createSeconds: number;
  /** Until the rollout status said every device's desired state was published (polled every 250 ms). */
  secondsToPublished: number | null;
  /** Set when the rollout ended otherwise than completed (state and reason), e.g. rolled back by a health gate. */
  rolloutEnded: string | null;
  cloudCpuSeconds: number;
  cloudPeakRssMb: number;
  /** The external broker's process during the rollout (null with the embedded broker, which is in the cloud's figures). */
  brokerCpuSeconds: number | null;
  brokerPeakRssMb: number | null;
  /** The simulated fleet's processes together during the rollout (not the system under test: its cost). */
  fleetCpuSeconds: number;
  fleetPeakRssMb: number;
  /** Artifact downloads the cloud answered 503 (all download slots busy) during this rollout. */
  artifactDownloadsDeferred: number | null;
  /**
   * Devices the cloud's rollout still listed as late (offline, not yet on the version) when
   * it said completed: a wave does not wait for offline devices, they keep their desired
   * state and update when they come back (so `completed` can come before secondsTo100).
   */
  devicesLateAtCompleted: number | null;
  /** Open files of the cloud's process (this one) and of the fleet processes at their peak. */
  cloudPeakOpenFiles: number;
  fleetPeakOpenFiles: number;
  /** The most open files per device any fleet process held (FDS_PER_SIMULATED_DEVICE plans for 8). */
  fleetPeakOpenFilesPerDevice: number;
}

/** Which broker the fleet connects to. */
export type BenchBroker = 'embedded' | 'mosquitto';

/** `linesight bench rollout`: time a one-wave rollout to many simulated devices. */
export function benchRolloutCommand(): Command {
  return new Command('rollout')
    .description(
      'time a one-wave, no-soak rollout from an in-process cloud to N simulated devices in a second process (real MQTT sessions, desired-state verification and artifact downloads; no cameras)',
    )
    .option('--devices <n>', 'simulated devices', parsePositiveInt, 1000)
    .option('--model <file.onnx>', 'model to roll out (default: a tiny generated model)')
    .option(
      '--timeout <sec>',
      'give up waiting for a rollout after this long',
      parsePositiveInt,
      120,
    )
    .option(
      '--start-timeout <sec>',
      'give up waiting for the fleet to start and come online after this long',
      parsePositiveInt,
      1800,
    )
    .option(
      '--fleet-processes <n>',
      'processes the simulated fleet is split over (default: as many as the open-files limit needs, ~5 per device)',
      parsePositiveInt,
    )
    .option(
      '--fleet-nice <n>',
      'nice value of the simulated-fleet processes (0-19): the cloud under test is served before its load generator, as it would be with the devices on their own hardware',
      parseNice,
      FLEET_NICE,
    )
    .addOption(
      new Option(
        '--broker <kind>',
        'the embedded broker, or a Mosquitto started from manifests/mosquitto/mosquitto.conf that the cloud manages (--mqtt-url)',
      )
        .choices(['embedded', 'mosquitto'])
        .default('embedded'),
    )
    .option(
      '--max-artifact-downloads <n>',
      "the cloud's artifact downloads at once (config artifactDownloadConcurrency; default: the cloud's default)",
      parsePositiveInt,
    )
    .option(
      '--desired-publish-rate <n>',
      "the cloud's desired-state publishes a second for a wave (config desiredPublishRatePerSec; default: the cloud's default)",
      parsePositiveInt,
    )
    .addOption(
      new Option(
        '--mqtt-accounts <kind>',
        "with --broker mosquitto: how the cloud keeps Mosquitto's logins, password and ACL files (manifests/mosquitto/mosquitto-files.conf) or the dynamic-security plugin (mosquitto.conf)",
      )
        .choices(['files', 'dynsec'])
        .default('files'),
    )
    .option('--json', 'print one JSON object on stdout')
    .action(
      async (opts: {
        broker: BenchBroker;
        mqttAccounts: MosquittoAccounts;
        devices: number;
        model?: string;
        timeout: number;
        startTimeout: number;
        fleetProcesses?: number;
        maxArtifactDownloads?: number;
        desiredPublishRate?: number;
        fleetNice: number;
        json?: boolean;
      }) => {
        const result = await runRolloutBench({
          devices: opts.devices,
          onnx: opts.model === undefined ? tinyModel() : await readFile(opts.model),
          timeoutSec: opts.timeout,
          startTimeoutSec: opts.startTimeout,
          fleetProcesses: opts.fleetProcesses,
          broker: opts.broker,
          maxArtifactDownloads: opts.maxArtifactDownloads,
          desiredPublishRatePerSec: opts.desiredPublishRate,
          fleetNice: opts.fleetNice,
          mqttAccounts: opts.mqttAccounts,
        });
        progressLine('');
        if (typeof result.openFilesWarning === 'string') console.error(result.openFilesWarning);
        console.log(opts.json ? JSON.stringify(result) : JSON.stringify(result, null, 2));
      },
    );
}

/**
 * The soft limit on open files of this process (Linux /proc), undefined elsewhere. A
 * child inherits it; `ulimit -n` before the bench raises it up to the hard limit.
 */
async function openFilesLimit(): Promise<number | undefined> {
  const limits = await readFile('/proc/self/limits', 'utf8').catch(() => '');
  const soft = /^Max open files\s+(\d+|unlimited)/m.exec(limits)?.[1];
  if (soft === undefined) return undefined;
  return soft === 'unlimited' ? Number.POSITIVE_INFINITY : Number(soft);
}

/**
 * The embedded broker's connection limit for a fleet of `devices`: the default, or
 * the fleet and 5 % more (reconnects overlap their old sessions for a moment), so
 * the limit is not what a large run measures.
 */
export function connectionLimitFor(devices: number): number {
  return Math.max(loadCloudConfig({}).mqttMaxConnections, Math.ceil(devices * 1.05));
}

/**
 * How many fleet processes `devices` need under `fdLimit` (FDS_PER_SIMULATED_DEVICE each, plus
 * FDS_BASE a process); throws when the cloud itself cannot hold them.
 */
export function plannedFleetProcesses(devices: number, fdLimit: number | undefined): number {
  if (fdLimit === undefined) return 1;
  if (devices + FDS_BASE > fdLimit)
    throw new Error(
      `the open-files limit (${fdLimit}) is too low for a cloud holding ${devices} MQTT connections: run \`ulimit -n ${devices + FDS_BASE}\` (or more) first`,
    );
  const perProcess = Math.floor((fdLimit - FDS_BASE) / FDS_PER_SIMULATED_DEVICE);
  return Math.max(1, Math.ceil(devices / perProcess));
}

/** Runs the benchmark: cloud here, fleet in child processes; two rollouts (install, then update). */
export async function runRolloutBench(options: {
  devices: number;
  onnx: Uint8Array;
  timeoutSec: number;
  startTimeoutSec?: number;
  fleetProcesses?: number;
  broker?: BenchBroker;
  /** The cloud's artifactDownloadConcurrency (its default when absent). */
  maxArtifactDownloads?: number | undefined;
  /** The cloud's desiredPublishRatePerSec (its default when absent). */
  desiredPublishRatePerSec?: number | undefined;
  /** Nice value of the fleet processes (default FLEET_NICE). */
  fleetNice?: number;
  /** With Mosquitto: files (default) or dynsec. */
  mqttAccounts?: MosquittoAccounts;
}): Promise<Record<string, unknown>> {
  const fdLimit = await openFilesLimit();
  const processes = options.fleetProcesses ?? plannedFleetProcesses(options.devices, fdLimit);
  const startTimeoutMs = (options.startTimeoutSec ?? 1800) * 1000;
  const dir = await mkdtemp(join(tmpdir(), 'linesight-bench-rollout-'));
  const broker = options.broker ?? 'embedded';
  const fleetNice = options.fleetNice ?? FLEET_NICE;
  const mqttAccounts = options.mqttAccounts ?? 'files';
  const mosquitto =
    broker === 'mosquitto' ? await startMosquitto({ accounts: mqttAccounts }) : undefined;
  // The cloud's warnings go to stderr (stdout is the JSON) and are counted for the result.
  const cloudWarnings = new LogWarnings();
  const cloudConfig = loadCloudConfig({
    ...(options.maxArtifactDownloads === undefined
      ? {}
      : { artifactDownloadConcurrency: options.maxArtifactDownloads }),
    ...(options.desiredPublishRatePerSec === undefined
      ? {}
      : { desiredPublishRatePerSec: options.desiredPublishRatePerSec }),
  });
  const cloud = new Cloud(
    {
      httpPort: 0,
      ...(mosquitto === undefined
        ? { mqttPort: 0, mqttMaxConnections: connectionLimitFor(options.devices) }
        : {
            mqttUrl: mosquitto.url,
            mqttPassword: mosquitto.password,
            advertisedMqttUrl: mosquitto.deviceUrl,
            mqttAccounts,
            ...(mqttAccounts === 'files'
              ? { mosquittoConfigDir: mosquitto.configDir, mosquittoPidFile: mosquitto.pidFile }
              : {}),
          }),
      dataDir: join(dir, 'cloud'),
      artifactDownloadConcurrency: cloudConfig.artifactDownloadConcurrency,
      desiredPublishRatePerSec: cloudConfig.desiredPublishRatePerSec,
    },
    pino({ level: 'warn' }, cloudWarnings),
  );
  const children: ChildProcess[] = [];
  const loadBefore = loadAverage();
  try {
    const urls = await cloud.start();
    const token = cloud.adminToken.token;
    const api = new CloudApiClient({ baseUrl: urls.http, adminToken: token });
    const v1 = options.onnx;
    const v2 = withModelContract(v1, {
      ...readModelContract(v1),
      training: { note: 'bench update' },
    });
    await api.publishModel({ name: MODEL, version: '1.0.0', onnx: v1 });
    await api.publishModel({ name: MODEL, version: '1.1.0', onnx: v2 });

    const sizes = Array.from(
      { length: processes },
      (_, k) => Math.floor(options.devices / processes) + (k < options.devices % processes ? 1 : 0),
    ).filter((n) => n > 0);
    const fleets = sizes.map((devices, k) => {
      const child = fork(
        FLEET_WORKER,
        fleetWorkerArgs({
          cloudUrl: urls.http,
          devices,
          dataDir: join(dir, `fleet-${k}`),
          idPrefix: `bench${k}`,
        }),
        {
          // The admin token is a secret: not on the command line, where `ps` shows it.
          env: fleetProcessEnv(token),
          stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
        },
      );
      children.push(child);
      // The simulator is the load, not the system under test: the cloud comes first for the CPU.
      if (child.pid !== undefined && fleetNice > 0) setPriority(child.pid, fleetNice);
      return { child, inbox: fleetInbox<FleetMessage>(child, { keepUnmatched: true }) };
    });
    progressLine(`starting ${options.devices} simulated devices in ${fleets.length} process(es)`);
    const forkedMs = Date.now();
    const readies = await Promise.all(
      fleets.map((f) => f.inbox.next((m) => m.type === 'ready', startTimeoutMs)),
    );
    await waitOnline(urls.http, options.devices, startTimeoutMs);
    const onlineSeconds = round((Date.now() - forkedMs) / 1000);
    const idle = await fleetUsage(fleets.map((f) => f.child.pid));
    const cloudIdleRssMb = Math.round(process.memoryUsage().rss / 1024 / 1024);
    // One more device with the whole fleet online, and gone again before the rollouts: with
    // Mosquitto's files the reload checks every live session's password again.
    const lateOne = await timeProvisioning(api, mosquitto);

    const timings: RolloutTiming[] = [];
    // A rollout that cannot be measured (a fleet process died) ends the runs, not the report:
    // the provisioning and online figures above still stand.
    let rolloutError: string | null = null;
    for (const version of ['1.0.0', '1.1.0']) {
      progressLine(`rolling out ${version} to ${options.devices} devices`);
      try {
        timings.push(
          await measureRollout(
            api,
            urls.http,
            fleets,
            version,
            options.devices,
            options.timeoutSec,
            mosquitto,
            sizes,
          ),
        );
      } catch (err) {
        rolloutError = `${version}: ${err instanceof Error ? err.message : String(err)}`;
        break;
      }
    }
    const update: Partial<RolloutTiming> = timings[1] ?? {};
    return {
      rolloutError,
      broker,
      ...(mosquitto !== undefined ? { mqttAccounts } : {}),
      devices: options.devices,
      secondsTo99: update.secondsTo99,
      secondsTo100: update.secondsTo100,
      secondsToCompleted: update.secondsToCompleted,
      cloudPeakRssMb: update.cloudPeakRssMb,
      cloudCpuSeconds: update.cloudCpuSeconds,
      brokerPeakRssMb: update.brokerPeakRssMb,
      brokerCpuSeconds: update.brokerCpuSeconds,
      createSeconds: update.createSeconds,
      modelBytes: v1.byteLength,
      fleetStartSeconds: Math.max(...readies.map((r) => (r.type === 'ready' ? r.startSeconds : 0))),
      provisionSeconds: round(
        Math.max(...readies.map((r) => (r.type === 'ready' ? r.provisionSeconds : 0))),
      ),
      onlineSeconds,
      provisionOneOnlineSeconds: lateOne.seconds,
      provisionOneOnlineBrokerCpuSeconds: lateOne.brokerCpuSeconds,
      cloudOnlineRssMb: cloudIdleRssMb,
      brokerOnlineRssMb:
        mosquitto?.pid === undefined
          ? null
          : Math.round((await processUsage(mosquitto.pid)).rssBytes / 1024 / 1024),
      fleetOnlineRssMb: Math.round(idle.rssBytes / 1024 / 1024),
      fleetProcesses: fleets.length,
      fleetProcessDevices: sizes,
      fleetNice,
      openFilesWarning: openFilesWarning(timings, sizes, fdLimit),
      artifactDownloadConcurrency: cloudConfig.artifactDownloadConcurrency,
      desiredPublishRatePerSec: cloudConfig.desiredPublishRatePerSec,
      artifactDownloadsDeferred: update.artifactDownloadsDeferred,
      loadAverage: { before: loadBefore, after: loadAverage() },
      openFilesLimit: fdLimit ?? null,
      brokerCounters: await brokerCounters(urls.http),
      cloudWarnings: cloudWarnings.summary(),
      rollouts: timings,
      simulated:
        'devices in separate processes, each with its own MQTT session and credentials, verifying signed desired state and manifest, downloading and hash-checking the artifact over HTTP, loading it (one shared ONNX worker per sha256) and running the golden check; no camera frames; each agent looks for edge data to forward every 2 s and checks its store quota every 30 s (100 ms and 1 s on a device)',
    };
  } finally {
    await Promise.all(children.map(stopFleet));
    await cloud.close();
    await mosquitto?.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

/** Provisions one device and decommissions it: how long the first took, and the broker's CPU for it. */
async function timeProvisioning(
  api: CloudApiClient,
  mosquitto: MosquittoBroker | undefined,
): Promise<{ seconds: number; brokerCpuSeconds: number | null }> {
  const pid = mosquitto?.pid;
  const cpuBefore = pid === undefined ? undefined : (await processUsage(pid)).cpuSeconds;
  const started = Date.now();
  await api.provisionDevice('bench-late-1');
  const seconds = round((Date.now() - started) / 1000);
  const brokerCpuSeconds =
    pid === undefined || cpuBefore === undefined
      ? null
      : round((await processUsage(pid)).cpuSeconds - cpuBefore);
  await api.decommissionDevice('bench-late-1');
  return { seconds, brokerCpuSeconds };
}

/** Asks a fleet process to stop; kills it if it has not exited within 30 s. */
async function stopFleet(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => {
    const timer = setTimeout(() => {
      child.kill();
      resolve();
    }, 30_000);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
  });
  if (child.connected) child.send({ type: 'stop' });
  await exited;
}

/** Values of unlabelled (or first-labelled) samples from the cloud's /metrics; absent ones are left out. */
async function metrics(httpUrl: string, names: string[]): Promise<Record<string, number>> {
  const text = await (await fetch(new URL('/metrics', httpUrl))).text();
  const found: Record<string, number> = {};
  for (const name of names) {
    const value = new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, 'm').exec(text)?.[1];
    if (value !== undefined) found[name] = Number(value);
  }
  return found;
}

/** The broker's counters from the cloud's /metrics (connections held, refused, throttled; takeovers). */
function brokerCounters(httpUrl: string): Promise<Record<string, number>> {
  return metrics(httpUrl, [
    'linesight_mqtt_connected_clients',
    'linesight_mqtt_refused_connections_total',
    'linesight_mqtt_throttled_publishes_total',
    'linesight_mqtt_session_takeovers_total',
  ]);
}

/** The cloud's count of artifact downloads answered 503 so far. */
async function deferredDownloads(httpUrl: string): Promise<number | undefined> {
  const name = 'linesight_artifact_downloads_deferred_total';
  return (await metrics(httpUrl, [name]))[name];
}

async function measureRollout(
  api: CloudApiClient,
  httpUrl: string,
  fleets: { child: ChildProcess; inbox: FleetInbox<FleetMessage> }[],
  version: string,
  devices: number,
  timeoutSec: number,
  mosquitto: MosquittoBroker | undefined,
  sizes: readonly number[],
): Promise<RolloutTiming> {
  for (const { child } of fleets) child.send({ type: 'watch', version });
  let peakRss = process.memoryUsage().rss;
  const brokerPid = mosquitto?.pid;
  let brokerPeakRss = 0;
  const sampleBroker = async () => {
    if (brokerPid !== undefined)
      brokerPeakRss = Math.max(brokerPeakRss, (await processUsage(brokerPid)).rssBytes);
  };
  await sampleBroker();
  const sampler = setInterval(() => {
    peakRss = Math.max(peakRss, process.memoryUsage().rss);
    void sampleBroker();
  }, 50);
  const fleetPids = fleets.map(({ child }) => child.pid);
  let fleetPeakRss = 0;
  const sampleFleet = async () => {
    fleetPeakRss = Math.max(fleetPeakRss, (await fleetUsage(fleetPids)).rssBytes);
  };
  // Open files: the cloud's (this process) and each fleet process's, every 2 s (a listing of up to 20,000).
  let cloudPeakFds = 0;
  const fleetPeakFds = fleetPids.map(() => 0);
  const sampleFds = async () => {
    cloudPeakFds = Math.max(cloudPeakFds, await openFiles(process.pid));
    await Promise.all(
      fleetPids.map(async (pid, k) => {
        fleetPeakFds[k] = Math.max(fleetPeakFds[k] ?? 0, await openFiles(pid));
      }),
    );
  };
  // Every 50 ms for the cloud (in this process: cheap); /proc reads of the fleet every 500 ms.
  let ticks = 0;
  const fleetSampler = setInterval(() => {
    void sampleFleet();
    if (ticks++ % 4 === 0) void sampleFds();
  }, 500);
  const fleetCpuBefore = (await fleetUsage(fleetPids)).cpuSeconds;
  const cpuBefore = process.cpuUsage();
  const brokerCpuBefore =
    brokerPid === undefined ? undefined : (await processUsage(brokerPid)).cpuSeconds;
  const deferredBefore = await deferredDownloads(httpUrl);
  const startedMs = Date.now();
  try {
    const created = await api.createRollout({
      model: MODEL,
      version,
      waves: [{ percent: 100, soakSec: 0 }],
    });
    const createSeconds = (Date.now() - startedMs) / 1000;
    // A fleet process answers when all its devices run the version; one that has not by
    // the deadline is asked where its devices are, so a straggler still leaves the 99 % figure.
    const reached = Promise.all(
      fleets.map(({ child, inbox }) => {
        const isReached = (m: FleetMessage) => m.type === 'reached' && m.version === version;
        const leftMs = Math.max(1, timeoutSec * 1000 - (Date.now() - startedMs));
        return inbox.next(isReached, leftMs).catch(() => {
          if (child.connected) child.send({ type: 'report', version });
          return inbox.next(isReached, 30_000);
        });
      }),
    );
    // Awaited below; a fleet process dying before that must not be an unhandled rejection.
    reached.catch(() => undefined);
    let completedMs: number | undefined;
    // The wave's desired state goes out in the background, paced: when the broker had it all.
    let publishedMs: number | undefined;
    let lateAtCompleted: number | null = null;
    let ended: string | null = null;
    while (completedMs === undefined && Date.now() - startedMs < timeoutSec * 1000) {
      const askedMs = Date.now();
      const r = await api.getRollout(created.id, { devices: false });
      if (publishedMs === undefined && r.publish.published >= r.publish.toPublish)
        publishedMs = Date.now();
      if (r.state === 'completed') {
        completedMs = Date.now();
        lateAtCompleted = r.waves.reduce((n, w) => n + (w.late?.length ?? 0), 0);
      } else if (r.state !== 'in_progress' && r.state !== 'pending') {
        // Rolled back (a health gate failed): the figures so far, and where the devices are.
        ended = `${r.state}: ${r.reason ?? ''}`;
        for (const { child } of fleets)
          if (child.connected) child.send({ type: 'report', version });
        break;
      } else await pollPause(250, Date.now() - askedMs);
    }
    const msgs = await reached;
    const cpu = process.cpuUsage(cpuBefore);
    await sampleFleet();
    await sampleFds();
    const fleetCpuSeconds = round((await fleetUsage(fleetPids)).cpuSeconds - fleetCpuBefore);
    const brokerCpuSeconds =
      brokerPid === undefined || brokerCpuBefore === undefined
        ? null
        : round((await processUsage(brokerPid)).cpuSeconds - brokerCpuBefore);
    const deferredAfter = await deferredDownloads(httpUrl);
    const times = msgs
      .flatMap((m) => (m.type === 'reached' ? m.atMs.filter((t) => t > 0) : []))
      .map((t) => (t - startedMs) / 1000)
      .sort((a, b) => a - b);
    const at = (share: number) => {
      const n = Math.ceil(share * devices);
      return times.length >= n ? round((times[n - 1] as number) ?? 0) : null;
    };
    return {
      version,
      secondsTo99: at(0.99),
      secondsTo100: at(1),
      devicesReached: times.length,
      secondsToCompleted:
        completedMs === undefined ? null : round((completedMs - startedMs) / 1000),
      createSeconds: round(createSeconds),
      secondsToPublished:
        publishedMs === undefined ? null : round((publishedMs - startedMs) / 1000),
      rolloutEnded: ended,
      cloudCpuSeconds: round((cpu.user + cpu.system) / 1e6),
      cloudPeakRssMb: Math.round(peakRss / 1024 / 1024),
      brokerCpuSeconds,
      brokerPeakRssMb: brokerPid === undefined ? null : Math.round(brokerPeakRss / 1024 / 1024),
      fleetCpuSeconds,
      fleetPeakRssMb: Math.round(fleetPeakRss / 1024 / 1024),
      artifactDownloadsDeferred:
        deferredBefore === undefined || deferredAfter === undefined
          ? null
          : deferredAfter - deferredBefore,
      devicesLateAtCompleted: lateAtCompleted,
      cloudPeakOpenFiles: cloudPeakFds,
      fleetPeakOpenFiles: Math.max(0, ...fleetPeakFds),
      fleetPeakOpenFilesPerDevice: round(
        Math.max(0, ...fleetPeakFds.map((n, k) => n / Math.max(1, sizes[k] ?? 1))),
      ),
    };
  } finally {
    clearInterval(sampler);
    clearInterval(fleetSampler);
  }
}

/**
 * Waits until every device is online, reading the count from /metrics once a second: the
 * cloud runs in this process, and listing 5,000 devices as JSON five times a second took
 * the CPU it needed to keep their sessions alive.
 */
async function waitOnline(httpUrl: string, devices: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const askedMs = Date.now();
    const online = (await metrics(httpUrl, ['linesight_devices_online'])).linesight_devices_online;
    progressLine(`${online}/${devices} devices online`);
    if (online !== undefined && online >= devices) return;
    if (Date.now() > deadline) throw new Error(`only ${online} of ${devices} devices came online`);
    await pollPause(1000, Date.now() - askedMs);
  }
}

/**
 * Waits before the next poll of the cloud: `minMs`, or ten times what the last
 * answer took, so the benchmark's own polling uses at most a tenth of the
 * cloud's time (an answer about 10,000 devices reads every one of them).
 */
export function pollDelayMs(minMs: number, lastAnswerMs: number): number {
  return Math.max(minMs, 10 * lastAnswerMs);
}

function pollPause(minMs: number, lastAnswerMs: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, pollDelayMs(minMs, lastAnswerMs)));
}

/** A tiny 1-channel 32x32 model scoring mean intensity: the artifact is a few hundred bytes. */
export function tinyModel(): Uint8Array {
  const side = 32;
  const g = new GraphBuilder('mean');
  const image = g.input('image', [1, 1, side, side]);
  const mean = g.op('ReduceMean', [image], [intsAttr('axes', [1, 2, 3]), intAttr('keepdims', 0)]);
  g.op('Identity', [mean], [], 'score');
  g.output('score', [1]);
  return encodeModel(g.build(), {
    schema: 'linesight.model/v1',
    kind: 'bench-mean',
    inputSpec: greyInputSpec(side),
    outputs: { score: 'score' },
    threshold: 0.5,
  });
}

/** Open file descriptors of a process (Linux /proc; 0 elsewhere or once it is gone). */
async function openFiles(pid: number | undefined): Promise<number> {
  if (pid === undefined) return 0;
  return (await readdir(`/proc/${pid}/fd`).catch(() => [])).length;
}

/**
 * Says when a fleet process came within 10 % of its open-files limit during a rollout: its
 * devices then fail with EMFILE (downloads, SQLite, MQTT), which the figures alone hide.
 * Names the per-device count measured and the --fleet-processes that would leave room.
 */
export function openFilesWarning(
  rollouts: readonly Pick<
    RolloutTiming,
    'version' | 'fleetPeakOpenFiles' | 'fleetPeakOpenFilesPerDevice'
  >[],
  sizes: readonly number[],
  fdLimit: number | undefined,
): string | null {
  if (fdLimit === undefined || !Number.isFinite(fdLimit)) return null;
  const worst = rollouts.reduce<(typeof rollouts)[number] | undefined>(
    (w, r) => (w === undefined || r.fleetPeakOpenFiles > w.fleetPeakOpenFiles ? r : w),
    undefined,
  );
  if (worst === undefined || worst.fleetPeakOpenFiles < 0.9 * fdLimit) return null;
  const devices = sizes.reduce((a, b) => a + b, 0);
  const perDevice = Math.max(worst.fleetPeakOpenFilesPerDevice, FDS_PER_SIMULATED_DEVICE);
  const processes = Math.ceil(
    devices / Math.max(1, Math.floor((fdLimit - FDS_BASE) / (perDevice + 1))),
  );
  return `a simulated-fleet process reached ${worst.fleetPeakOpenFiles} open files of its limit ${fdLimit} during the ${worst.version} rollout (${worst.fleetPeakOpenFilesPerDevice} per device, ${Math.max(...sizes)} devices in the process): its devices may have failed with EMFILE. Run with --fleet-processes ${processes} or more, or raise ulimit -n`;
}

/** CPU seconds (user + system) and resident memory of another process, from Linux /proc (zeros elsewhere). */
async function processUsage(pid: number): Promise<{ cpuSeconds: number; rssBytes: number }> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
  // Fields after the parenthesised command name; utime and stime are the 14th and 15th, in clock ticks (100 a second on Linux).
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(fields[11] ?? 0) + Number(fields[12] ?? 0);
  const status = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => '');
  const rssKb = Number(/^VmRSS:\s+(\d+) kB/m.exec(status)?.[1] ?? 0);
  return { cpuSeconds: ticks / 100, rssBytes: rssKb * 1024 };
}

/** CPU seconds and resident memory of the fleet processes together. */
async function fleetUsage(
  pids: readonly (number | undefined)[],
): Promise<{ cpuSeconds: number; rssBytes: number }> {
  const usages = await Promise.all(
    pids.flatMap((pid) => (pid === undefined ? [] : [processUsage(pid)])),
  );
  return {
    cpuSeconds: usages.reduce((sum, u) => sum + u.cpuSeconds, 0),
    rssBytes: usages.reduce((sum, u) => sum + u.rssBytes, 0),
  };
}

/** The 1, 5 and 15 minute load averages, rounded (the benchmark's machine was shared or not). */
function loadAverage(): number[] {
  return loadavg().map((x) => Math.round(x * 100) / 100);
}

function round(x: number): number {
  return Math.round(x * 1000) / 1000;
}
