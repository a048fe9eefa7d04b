import { spawn } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { writeDeviceCredentials } from '@linesight/agent';
import { mjpegReplayCommand, renderFramePool } from '@linesight/firmware-sim';
import { withDeadline } from '@linesight/protocol';
import { progressLine } from '../progress.ts';
import { benchChildEnv, terminateChild } from './child-process.ts';
import { median } from './stats.ts';

/** Frame rate of the camera process and the guard's `--fps`. */
const CAMERA_FPS = 10;
/** Frames rendered for the camera process when no folder is given. */
const RENDERED_FRAMES = 50;
/** Longest a guard may take from spawn to its first verdict, and to its worker's readiness. */
const RUN_TIMEOUT_MS = 90_000;
/** Time between SIGTERM and SIGKILL when stopping a guard (it stops its worker first). */
const STOP_GRACE_MS = 30_000;
/** Native modules looked for in the guard's memory map at its first verdict. */
const NATIVE = ['onnxruntime', 'sharp', 'better_sqlite3'];

/** Options of a line guard cold-start measure. */
export interface GuardColdStartOptions {
  /** The `linesight.js` of each build compared, started in turn. */
  bins: string[];
  /** Starts per build. */
  runs: number;
  /** Folder of `*.jpg` frames the camera process sends; rendered (synthetic) when absent. */
  cameraFrames?: string;
}

/** One line guard start. */
export interface GuardColdStartRun {
  bin: string;
  /** Which of onnxruntime, sharp and better_sqlite3 the guard had mapped at its first verdict. */
  native: string[];
  /** Spawn to the 'line guard started' log line (outputs and camera started). */
  startedMs: number;
  /** Spawn to the first verdict on the guard's SSE stream. */
  firstVerdictMs: number;
  /** Spawn to its worker's 'guard worker ready', null when not within the run's deadline. */
  workerReadyMs: number | null;
  /** One-minute load average when the run started. */
  load1: number;
}

/** The measure's JSON. */
export interface GuardColdStartResult {
  at: string;
  loadBefore: number[];
  loadAfter: number[];
  results: GuardColdStartRun[];
  /** Medians per build. */
  summary: {
    bin: string;
    runs: number;
    startedMs: number;
    firstVerdictMs: number;
    workerReadyMs: number | null;
  }[];
  method: string;
}

/**
 * Measures a line guard's cold start: spawns `linesight agent --line-guard` with an
 * mjpeg-exec camera (a replay process) and no cloud, for each build in turn, `runs` times.
 */
export async function runGuardColdStart(
  opts: GuardColdStartOptions,
): Promise<GuardColdStartResult> {
  const dir = await mkdtemp(join(tmpdir(), 'linesight-bench-guard-'));
  try {
    const framesDir = opts.cameraFrames ?? (await renderFrames(join(dir, 'frames')));
    const publicKeyPem = generateKeyPairSync('ed25519')
      .publicKey.export({ type: 'spki', format: 'pem' })
      .toString();
    const results: GuardColdStartRun[] = [];
    const loadBefore = loadavg();
    for (let i = 0; i < opts.runs; i++) {
      for (const bin of opts.bins) {
        progressLine(`run ${i + 1}/${opts.runs}: line guard of ${bin}`, 0);
        const run = await once(bin, framesDir, join(dir, `run-${results.length}`), publicKeyPem);
        results.push(run);
        progressLine(
          `run ${i + 1}/${opts.runs}: first verdict ${run.firstVerdictMs} ms, worker ready ${run.workerReadyMs ?? '-'} ms (${bin})`,
          0,
        );
      }
    }
    const loadAfter = loadavg();
    const summary = opts.bins.map((bin) => {
      const own = results.filter((r) => r.bin === bin);
      const ready = own.flatMap((r) => (r.workerReadyMs === null ? [] : [r.workerReadyMs]));
      return {
        bin,
        runs: own.length,
        startedMs: median(own.map((r) => r.startedMs)),
        firstVerdictMs: median(own.map((r) => r.firstVerdictMs)),
        workerReadyMs: ready.length === 0 ? null : median(ready),
      };
    });
    return {
      at: new Date().toISOString(),
      loadBefore,
      loadAfter,
      results,
      summary,
      method: `each run spawns \`linesight agent --line-guard --fps ${CAMERA_FPS} --camera mjpeg-exec:...\` (the camera a replay process of firmware-sim sending the frames at ${CAMERA_FPS} frames/s, as the fault rig runs it; no cloud: the guard does not wait for one, its worker retries in the background) with plain node (NODE_OPTIONS cleared; a source bin loads through tsx, its cache warm), builds interleaved; startedMs to 'line guard started', firstVerdictMs to the first verdict on the guard's SSE stream (/verdicts/stream), workerReadyMs to 'guard worker ready' (null if not within ${RUN_TIMEOUT_MS / 1000} s); native: /proc/<pid>/maps at the first verdict; summary: medians per build`,
    };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function renderFrames(framesDir: string): Promise<string> {
  await mkdir(framesDir, { recursive: true });
  const frames = await renderFramePool({
    seed: 1,
    width: 256,
    height: 256,
    defectRate: 0.1,
    count: RENDERED_FRAMES,
  });
  await Promise.all(
    frames.map((jpeg, i) => writeFile(join(framesDir, `${String(i).padStart(4, '0')}.jpg`), jpeg)),
  );
  return framesDir;
}

async function once(
  bin: string,
  framesDir: string,
  dataDir: string,
  publicKeyPem: string,
): Promise<GuardColdStartRun> {
  await writeDeviceCredentials(join(dataDir, 'device.json'), {
    deviceId: 'cold-start',
    username: 'cold-start',
    password: 'x',
    // Nothing listens there: the guard's worker retries in the background.
    cloudUrl: 'http://127.0.0.1:9',
    mqttUrl: 'mqtt://127.0.0.1:9',
    trustedKeys: [{ keyId: 'k1', publicKeyPem }],
  });
  const camera = mjpegReplayCommand({ framesDir, fps: CAMERA_FPS });
  const env = benchChildEnv();
  const load1 = loadavg()[0] ?? Number.NaN;
  const t0 = performance.now();
  const child = spawn(
    process.execPath,
    [
      bin,
      'agent',
      '--device-id',
      'cold-start',
      '--camera',
      `mjpeg-exec:${camera}`,
      '--fps',
      String(CAMERA_FPS),
      '--line-guard',
      '--data-dir',
      dataDir,
      '--http-port',
      '0',
    ],
    { env, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const stream = new AbortController();
  const stderrTail: string[] = [];
  try {
    createInterface({ input: child.stderr! }).on('line', (line) => {
      stderrTail.push(line);
      if (stderrTail.length > 20) stderrTail.shift();
    });
    const exited = new Promise<never>((_, reject) =>
      child.once('exit', (code, signal) =>
        reject(
          new Error(
            `the line guard of ${bin} exited (${code ?? signal}) during its start${stderrTail.length > 0 ? `:\n${stderrTail.join('\n')}` : ''}`,
          ),
        ),
      ),
    );
    exited.catch(() => undefined);
    let startedMs = Number.NaN;
    let native: Promise<string[]> = Promise.resolve([]);
    let onVerdict: (atMs: number) => void = () => undefined;
    let onStreamError: (err: unknown) => void = () => undefined;
    const firstVerdict = new Promise<number>((resolve, reject) => {
      onVerdict = resolve;
      onStreamError = reject;
    });
    let onWorkerReady: (atMs: number) => void = () => undefined;
    const workerReady = new Promise<number>((resolve) => (onWorkerReady = resolve));
    createInterface({ input: child.stdout! }).on('line', (line) => {
      if (line.includes('"agent http endpoint listening"')) {
        const { url } = JSON.parse(line) as { url: string };
        // The line's first verdict, as its SSE stream delivers it.
        readFirstVerdict(`${url}/verdicts/stream`, stream.signal).then(() => {
          onVerdict(performance.now() - t0);
          native = nativeLoaded(child.pid);
        }, onStreamError);
      }
      if (line.includes('"line guard started"')) startedMs = performance.now() - t0;
      if (line.includes('"guard worker ready"')) onWorkerReady(performance.now() - t0);
    });
    const firstVerdictMs = await withDeadline(
      Promise.race([firstVerdict, exited]),
      RUN_TIMEOUT_MS,
      `the line guard of ${bin} gave no verdict on its SSE stream`,
    );
    const left = Math.max(0, RUN_TIMEOUT_MS - (performance.now() - t0));
    let timer: NodeJS.Timeout | undefined;
    const workerReadyMs = await Promise.race([
      workerReady,
      exited,
      new Promise<null>((resolve) => (timer = setTimeout(() => resolve(null), left))),
    ]).finally(() => clearTimeout(timer));
    return {
      bin,
      native: await native,
      startedMs: Math.round(startedMs),
      firstVerdictMs: Math.round(firstVerdictMs),
      workerReadyMs: workerReadyMs === null ? null : Math.round(workerReadyMs),
      load1,
    };
  } finally {
    stream.abort();
    await terminateChild(child, STOP_GRACE_MS);
  }
}

/** Resolves when the SSE stream at `url` delivers its first event's data. */
async function readFirstVerdict(url: string, signal: AbortSignal): Promise<void> {
  const res = await fetch(url, { signal });
  if (!res.ok || res.body === null) throw new Error(`${url} answered ${res.status}`);
  for await (const chunk of res.body) {
    if (Buffer.from(chunk).includes('data:')) return;
  }
  throw new Error(`${url} ended before a verdict`);
}

/** Which of NATIVE a process has mapped (its shared libraries or addons). */
async function nativeLoaded(pid: number | undefined): Promise<string[]> {
  const maps = await readFile(`/proc/${pid}/maps`, 'utf8').catch(() => '');
  return NATIVE.filter((name) => maps.includes(name));
}
