import { spawn, type ChildProcess } from 'node:child_process';
import { access, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { Command } from 'commander';
import mqtt, { type MqttClient } from 'mqtt';
import pino from 'pino';
import { CloudApiClient } from '@linesight/api-client';
import { writeDeviceCredentials } from '@linesight/agent';
import { Cloud } from '@linesight/cloud';
import {
  CHANNEL_SCHEMAS,
  LinesightError,
  decodePayload,
  deviceTopic,
  withDeadline,
} from '@linesight/protocol';
import { parsePositiveInt } from '../options.ts';
import { progressLine } from '../progress.ts';
import { benchChildEnv, terminateChild } from '../bench/child-process.ts';
import { runGuardColdStart } from '../bench/guard-cold-start.ts';
import { median } from '../bench/stats.ts';

const SOURCE_BIN = fileURLToPath(new URL('../../bin/linesight.js', import.meta.url));
const DEFAULT_MODEL = './data/demo/surface-defects-1.0.0.onnx';
const DEFAULT_RELEASE = './dist/release/linesight';
/** Longest a single agent start may take before the run fails. */
const RUN_TIMEOUT_MS = 180_000;
/** Time between SIGTERM and SIGKILL when stopping an agent (SIGTERM starts its orderly shutdown). */
const STOP_GRACE_MS = 30_000;

/** How an agent is started: from the source checkout through tsx, or from a compiled release. */
type Mode = 'source-cold' | 'source' | 'release';

/** One measured agent start. */
interface StartupRun {
  /** Process spawn to the `agent started` log line. */
  startedMs: number;
  /** Process spawn to the first frame scored by the assigned model (seen over MQTT). */
  firstScoredMs: number;
  /** Resident set at `agent started`. */
  rssStartedMb: number;
  /** Resident set once `frames` frames were scored. */
  rssScoringMb: number;
  /** Peak resident set (VmHWM) by then. */
  peakRssMb: number;
}

/** `linesight bench startup`: agent start-up time and memory, source checkout (tsx) vs compiled release; or a line guard's cold start. */
export function benchStartupCommand(): Command {
  return new Command('startup')
    .description(
      "agent start-up time and RSS: from the source checkout through the tsx loader (cache cold and warm) and from a compiled release (npm run build:release -- --link-deps), against a cloud in this process. With --line-guard: a line guard's cold start instead, without a cloud",
    )
    .option('--model <file.onnx>', `model the agents score with (default ${DEFAULT_MODEL})`)
    .option('--release <dir>', `release folder (default ${DEFAULT_RELEASE})`)
    .option('--runs <n>', 'agent starts per mode (interleaved)', parsePositiveInt, 5)
    .option('--frames <n>', 'frames scored before the RSS is read', parsePositiveInt, 100)
    .option(
      '--line-guard',
      "measure a line guard's cold start instead: `linesight agent --line-guard` with an mjpeg-exec camera (a replay process) and no cloud, from spawn to its first verdict on its SSE stream and to its worker's 'guard worker ready'; --runs starts per build",
    )
    .option(
      '--bin <linesight.js...>',
      "with --line-guard: each build's bin/linesight.js, started in turn (default: this checkout's)",
    )
    .option(
      '--camera-frames <dir>',
      "with --line-guard: *.jpg frames the guard's camera sends (default: 50 synthetic 256x256 frames)",
    )
    .option('--json', 'print one line of JSON (the default indents it)')
    .action(
      async (
        opts: {
          model?: string;
          release?: string;
          runs: number;
          frames: number;
          lineGuard?: boolean;
          bin?: string[];
          cameraFrames?: string;
          json?: boolean;
        },
        command: Command,
      ) => {
        const print = (result: unknown) => {
          progressLine('');
          console.log(opts.json ? JSON.stringify(result) : JSON.stringify(result, null, 2));
        };
        if (opts.lineGuard === true) {
          const misplaced = ['model', 'release', 'frames'].filter(
            (name) => command.getOptionValueSource(name) === 'cli',
          );
          if (misplaced.length > 0)
            throw new LinesightError(
              'ERR_CLI_USAGE',
              `${misplaced.map((name) => `--${name}`).join(', ')} ${misplaced.length === 1 ? 'applies' : 'apply'} to the agent against a cloud, not to --line-guard`,
            );
          const bins = (opts.bin ?? [SOURCE_BIN]).map((bin) => resolve(bin));
          const twice = bins.find((bin, i) => bins.indexOf(bin) !== i);
          if (twice !== undefined)
            throw new LinesightError('ERR_CLI_USAGE', `--bin names ${twice} twice`);
          for (const bin of bins)
            await access(bin).catch(() => {
              throw new LinesightError('ERR_CLI_USAGE', `--bin: no file at ${bin}`);
            });
          const cameraFrames =
            opts.cameraFrames === undefined ? undefined : resolve(opts.cameraFrames);
          if (cameraFrames !== undefined) {
            const names = await readdir(cameraFrames).catch(() => []);
            if (!names.some((name) => name.endsWith('.jpg')))
              throw new LinesightError(
                'ERR_CLI_USAGE',
                `--camera-frames: no *.jpg in ${cameraFrames}`,
              );
          }
          print(
            await runGuardColdStart({
              bins,
              runs: opts.runs,
              ...(cameraFrames === undefined ? {} : { cameraFrames }),
            }),
          );
          return;
        }
        if (opts.bin !== undefined || opts.cameraFrames !== undefined)
          throw new LinesightError('ERR_CLI_USAGE', '--bin and --camera-frames need --line-guard');
        const model = resolve(opts.model ?? DEFAULT_MODEL);
        const release = resolve(opts.release ?? DEFAULT_RELEASE);
        const releaseBin = join(release, 'bin', 'linesight.js');
        await access(model).catch(() => {
          throw new Error(`no model at ${model}: run \`npm start\` once or pass --model`);
        });
        await access(releaseBin).catch(() => {
          throw new Error(
            `no release at ${release}: build one with \`npm run build:release -- --link-deps\` or pass --release`,
          );
        });
        if (!(await readFile(SOURCE_BIN, 'utf8')).includes('tsx'))
          throw new Error('bench startup compares against the source checkout: run it from one');
        print(await runStartupBench({ ...opts, model, releaseBin }));
      },
    );
}

async function runStartupBench(opts: {
  model: string;
  releaseBin: string;
  runs: number;
  frames: number;
}): Promise<Record<string, unknown>> {
  const dir = await mkdtemp(join(tmpdir(), 'linesight-bench-startup-'));
  const cloud = new Cloud(
    { httpPort: 0, mqttPort: 0, dataDir: join(dir, 'cloud'), logLevel: 'warn' },
    pino({ level: 'warn' }),
  );
  let observer: MqttClient | undefined;
  try {
    const urls = await cloud.start();
    const token = cloud.adminToken.token;
    const api = new CloudApiClient({ baseUrl: urls.http, adminToken: token });
    await api.publishModel({ name: 'startup', version: '1.0.0', onnx: await readFile(opts.model) });
    observer = await mqtt.connectAsync(urls.mqtt, {
      clientId: `bench-startup-${process.pid}`,
      username: 'admin',
      password: token,
      reconnectPeriod: 0,
    });
    const scored = new Map<string, { firstAtMs?: number; count: number; waiter?: () => void }>();
    const target = opts.frames;
    observer.on('message', (topic, payload) => {
      const id = topic.split('/')[3];
      const entry = id === undefined ? undefined : scored.get(id);
      if (entry === undefined || payload.length === 0) return;
      const r = decodePayload(CHANNEL_SCHEMAS.results, payload, 'result');
      if (r.model === null || r.verdict === 'unknown') return;
      entry.firstAtMs ??= Date.now();
      entry.count++;
      if (entry.count >= target) entry.waiter?.();
    });
    const modes: Mode[] = ['source-cold', 'source', 'release'];
    const runs: Record<Mode, StartupRun[]> = { 'source-cold': [], source: [], release: [] };
    const loadMs: Record<Mode, number[]> = { 'source-cold': [], source: [], release: [] };
    for (let i = 0; i < opts.runs; i++) {
      for (const mode of modes) {
        progressLine(`run ${i + 1}/${opts.runs}: ${mode}`, 0);
        loadMs[mode].push(await timeVersion(binOf(mode, opts.releaseBin), envOf(mode)));
        const id = `startup-${mode}-${i}`;
        const creds = await api.provisionDevice(id);
        const agentDir = join(dir, id);
        await writeDeviceCredentials(join(agentDir, 'device.json'), {
          ...creds,
          cloudUrl: urls.http,
          mqttUrl: urls.mqtt,
        });
        // Assigned before the agent starts: its retained desired state waits for it.
        await api.createRollout({ model: 'startup', version: '1.0.0', devices: [id] });
        const entry: { firstAtMs?: number; count: number; waiter?: () => void } = { count: 0 };
        scored.set(id, entry);
        await observer.subscribeAsync(deviceTopic(id, 'results'), { qos: 0 });
        runs[mode].push(
          await measureStart(
            binOf(mode, opts.releaseBin),
            envOf(mode),
            id,
            agentDir,
            entry,
            opts.frames,
          ),
        );
        await observer.unsubscribeAsync(deviceTopic(id, 'results'));
        scored.delete(id);
      }
    }
    const summary = (mode: Mode) => ({
      runs: runs[mode].length,
      loadMs: median(loadMs[mode]),
      startedMs: median(runs[mode].map((r) => r.startedMs)),
      firstScoredMs: median(runs[mode].map((r) => r.firstScoredMs)),
      rssStartedMb: median(runs[mode].map((r) => r.rssStartedMb)),
      rssScoringMb: median(runs[mode].map((r) => r.rssScoringMb)),
      peakRssMb: median(runs[mode].map((r) => r.peakRssMb)),
    });
    const release = summary('release');
    const source = summary('source');
    const cold = summary('source-cold');
    return {
      frames: opts.frames,
      release,
      source,
      sourceCold: cold,
      startedRatioSourceToRelease: round(source.startedMs / release.startedMs),
      rssSavedMb: round(source.rssScoringMb - release.rssScoringMb),
      samples: runs,
      method:
        'medians over interleaved runs. loadMs: `linesight --version` to exit (loading every module of the command). Agent runs: `linesight agent --camera synthetic --fps 20` as a child process of this one, its device assigned the model before it starts; startedMs to the "agent started" log line, firstScoredMs to the first result with a model verdict on MQTT; RSS from /proc/<pid>/status (VmRSS at started and after --frames scored frames, VmHWM then). source: packages/cli/bin/linesight.js through tsx with its transform cache warm; source-cold: the same with TSX_DISABLE_CACHE=1; release: the compiled release, plain node',
    };
  } finally {
    await observer?.endAsync(true);
    await cloud.close();
    await rm(dir, { recursive: true, force: true });
  }
}

function binOf(mode: Mode, releaseBin: string): string {
  return mode === 'release' ? releaseBin : SOURCE_BIN;
}

function envOf(mode: Mode): NodeJS.ProcessEnv {
  // source-cold is the measure of a tsx start with its transform cache off.
  return benchChildEnv({ tsxCacheDisabled: mode === 'source-cold' });
}

/** Milliseconds from spawn to exit of `linesight --version`. */
async function timeVersion(bin: string, env: NodeJS.ProcessEnv): Promise<number> {
  const start = performance.now();
  const child = spawn(process.execPath, [bin, '--version'], { env, stdio: 'ignore' });
  const code = await new Promise<number | null>((res) => child.once('exit', res));
  if (code !== 0) throw new Error(`${bin} --version exited ${code}`);
  return round(performance.now() - start);
}

async function measureStart(
  bin: string,
  env: NodeJS.ProcessEnv,
  id: string,
  agentDir: string,
  entry: { firstAtMs?: number; count: number; waiter?: () => void },
  frames: number,
): Promise<StartupRun> {
  const spawnedMs = Date.now();
  const child = spawn(
    process.execPath,
    [
      bin,
      'agent',
      '--device-id',
      id,
      '--camera',
      'synthetic:1',
      '--fps',
      '20',
      '--data-dir',
      agentDir,
    ],
    { env, stdio: ['ignore', 'pipe', 'inherit'] },
  );
  try {
    const exited = new Promise<never>((_, reject) =>
      child.once('exit', (code) => reject(new Error(`agent ${id} exited ${code}`))),
    );
    exited.catch(() => undefined);
    const started = new Promise<number>((res) => {
      createInterface({ input: child.stdout! }).on('line', (line) => {
        if (line.includes('"msg":"agent started"')) res(Date.now());
      });
    });
    const startedAtMs = await withDeadline(
      Promise.race([started, exited]),
      RUN_TIMEOUT_MS,
      `agent ${id} did not start`,
    );
    const rssStartedMb = (await procStatusMb(child, 'VmRSS')) ?? Number.NaN;
    const enough = new Promise<void>((res) => {
      if (entry.count >= frames) res();
      else entry.waiter = res;
    });
    await withDeadline(
      Promise.race([enough, exited]),
      RUN_TIMEOUT_MS,
      `agent ${id} did not score enough frames`,
    );
    const rssScoringMb = (await procStatusMb(child, 'VmRSS')) ?? Number.NaN;
    const peakRssMb = (await procStatusMb(child, 'VmHWM')) ?? Number.NaN;
    return {
      startedMs: startedAtMs - spawnedMs,
      firstScoredMs: (entry.firstAtMs ?? Number.NaN) - spawnedMs,
      rssStartedMb,
      rssScoringMb,
      peakRssMb,
    };
  } finally {
    await terminateChild(child, STOP_GRACE_MS);
  }
}

/** A `/proc/<pid>/status` memory field in MB, or undefined where there is none. */
async function procStatusMb(child: ChildProcess, field: string): Promise<number | undefined> {
  try {
    const status = await readFile(`/proc/${child.pid}/status`, 'utf8');
    const kb = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1];
    return kb === undefined ? undefined : round(Number(kb) / 1024);
  } catch {
    return undefined;
  }
}

function round(x: number): number {
  return Math.round(x * 10) / 10;
}
