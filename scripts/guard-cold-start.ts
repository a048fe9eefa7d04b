// Line guard cold start, interleaved between builds of the command: from spawning
// `linesight agent --line-guard` to its first verdict ('line guard started': the camera runs
// and, with no worker yet, every frame is answered `unknown` at once) and to its worker's
// 'guard worker ready'. JSON on stdout.
//   npx tsx scripts/guard-cold-start.ts --frames DIR --runs 5 BIN_A BIN_B ...
// BIN is a `packages/cli/bin/linesight.js`; DIR holds JPEG frames, sent by a camera process
// (firmware-sim's mjpeg-replay, as the fault rig does) through `--camera mjpeg-exec:...`.
// Each run also lists the native modules the guard had loaded at its first verdict.
// No cloud is needed: the guard does not wait for one (its worker retries in the background).
import { spawn } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { createRequire } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { writeDeviceCredentials } from '@linesight/agent';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { frames: { type: 'string' }, runs: { type: 'string', default: '5' } },
});
const runs = Number(values.runs);
if (values.frames === undefined || positionals.length === 0 || !(runs > 0)) {
  process.stderr.write('usage: guard-cold-start.ts --frames DIR [--runs N] BIN...\n');
  process.exit(2);
}

const PUBLIC_KEY_PEM = generateKeyPairSync('ed25519')
  .publicKey.export({ type: 'spki', format: 'pem' })
  .toString();

const REPLAY_MAIN = fileURLToPath(
  new URL('../firmware-sim/src/mjpeg-replay-main.ts', import.meta.url),
);
const TSX_ESM = pathToFileURL(createRequire(import.meta.url).resolve('tsx/esm')).href;
const NATIVE = ['onnxruntime', 'sharp', 'better_sqlite3'];

/** Which of NATIVE a process has mapped (its shared libraries or addons). */
async function nativeLoaded(pid: number): Promise<string[]> {
  const maps = await readFile(`/proc/${pid}/maps`, 'utf8').catch(() => '');
  return NATIVE.filter((name) => maps.includes(name));
}

interface Run {
  bin: string;
  native: string[];
  /** To 'line guard started' (outputs and camera started). */
  startedMs: number;
  /** To the first verdict on the line's SSE stream. */
  firstVerdictMs: number;
  workerReadyMs: number | null;
  load1: number;
}

async function once(bin: string): Promise<Run> {
  const dir = await mkdtemp(join(tmpdir(), 'guard-cold-start-'));
  await writeDeviceCredentials(join(dir, 'device.json'), {
    deviceId: 'cold-start',
    username: 'cold-start',
    password: 'x',
    cloudUrl: 'http://127.0.0.1:9',
    mqttUrl: 'mqtt://127.0.0.1:9',
    trustedKeys: [{ keyId: 'k1', publicKeyPem: PUBLIC_KEY_PEM }],
  });
  const load1 = loadavg()[0]!;
  const t0 = performance.now();
  const child = spawn(
    process.execPath,
    [
      bin,
      'agent',
      '--device-id',
      'cold-start',
      '--camera',
      `mjpeg-exec:exec ${process.execPath} --import ${TSX_ESM} ${REPLAY_MAIN} --frames ${values.frames} --fps 10`,
      '--fps',
      '10',
      '--line-guard',
      '--data-dir',
      dir,
      '--http-port',
      '0',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let firstVerdictMs = NaN;
  let startedMs = NaN;
  const streams: AbortController[] = [];
  let workerReadyMs: number | null = null;
  let native: Promise<string[]> = Promise.resolve([]);
  const done = new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, 90_000);
    createInterface({ input: child.stdout! }).on('line', (line) => {
      if (line.includes('"agent http endpoint listening"')) {
        // The line's first verdict, as its SSE stream delivers it.
        const url = String((JSON.parse(line) as { url: string }).url);
        const stream = new AbortController();
        streams.push(stream);
        void fetch(`${url}/verdicts/stream`, { signal: stream.signal })
          .then(async (res) => {
            for await (const chunk of res.body!) {
              if (Buffer.from(chunk as Uint8Array).includes('data:')) {
                firstVerdictMs = performance.now() - t0;
                native = nativeLoaded(child.pid!);
                break;
              }
            }
          })
          .catch(() => undefined);
      }
      if (line.includes('"line guard started"')) startedMs = performance.now() - t0;
      if (line.includes('"guard worker ready"')) {
        workerReadyMs = performance.now() - t0;
        clearTimeout(timer);
        resolve();
      }
    });
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
  });
  child.stderr!.resume();
  await done;
  for (const stream of streams) stream.abort();
  child.kill('SIGTERM');
  await new Promise((resolve) =>
    child.exitCode === null ? child.once('exit', resolve) : resolve(null),
  );
  await rm(dir, { recursive: true, force: true });
  return {
    bin,
    native: await native,
    startedMs: Math.round(startedMs),
    firstVerdictMs: Math.round(firstVerdictMs),
    workerReadyMs: workerReadyMs && Math.round(workerReadyMs),
    load1,
  };
}

const results: Run[] = [];
const loadBefore = loadavg();
for (let i = 0; i < runs; i++) {
  for (const bin of positionals) {
    const r = await once(bin);
    results.push(r);
    process.stderr.write(`${JSON.stringify(r)}\n`);
  }
}
process.stdout.write(
  `${JSON.stringify({ at: new Date().toISOString(), loadBefore, loadAfter: loadavg(), results }, null, 2)}\n`,
);
