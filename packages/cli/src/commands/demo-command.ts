import { access, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { Command } from 'commander';
import pino from 'pino';
import { Cloud } from '@linesight/cloud';
import { CloudApiClient, type DeviceSummary } from '@linesight/api-client';
import { cloudFetch } from '@linesight/agent';
import { SimulatedFleet, SyntheticCamera, syntheticSamples } from '@linesight/firmware-sim';
import { trainDefectModel } from '@linesight/model';
import { trainingProgressPrinter } from './model-command.ts';
import { parsePort, parsePositiveInt, parsePositive, logLevelOption } from '../options.ts';
import { progressLine } from '../progress.ts';
import { logDestination, logPrettyOption } from '../log-output.ts';
import { installShutdown } from '../shutdown.ts';
import { envAdminToken } from '../admin-token.ts';

const DEMO_MODEL = 'surface-defects';
const DEMO_VERSION = '1.0.0';
/** How long stopping the fleet and the cloud may take after Ctrl-C. */
const DEMO_SHUTDOWN_LIMIT_MS = 10_000;

interface DemoOptions {
  httpPort: number;
  mqttPort: number;
  dataDir: string;
  devices: number;
  fps: number;
  tlsCert?: string;
  tlsKey?: string;
  tlsCa?: string;
  logLevel: string;
  logPretty?: boolean;
}

/** `linesight demo`: everything on one machine, what `npm start` runs. */
export function demoCommand(): Command {
  return new Command('demo')
    .description(
      'run everything on this machine: cloud, a default model, and a simulated fleet scoring synthetic frames',
    )
    .option('--http-port <port>', 'HTTP port (0 = any free port)', parsePort, 8080)
    .option('--mqtt-port <port>', 'MQTT port (0 = any free port)', parsePort, 1883)
    .option('--data-dir <dir>', 'where the demo keeps its cloud, model and devices', './data/demo')
    .option('--devices <n>', 'simulated devices', parsePositiveInt, 4)
    .option('--fps <n>', 'frames per second per device', parsePositive, 5)
    .option(
      '--tls-cert <file>',
      'serve HTTPS and mqtts with this certificate (PEM); the simulated devices pin its CA, as real ones do',
    )
    .option('--tls-key <file>', 'the private key of --tls-cert (PEM)')
    .option(
      '--tls-ca <file>',
      'the CA that signed --tls-cert (PEM; default: the certificate itself, self-signed)',
    )
    .addOption(logLevelOption('warn', 'log level of the components'))
    .addOption(logPrettyOption())
    .action(runDemo);
}

async function runDemo(opts: DemoOptions): Promise<void> {
  const dataDir = resolve(opts.dataDir);
  const destination = logDestination(opts.logPretty);
  const logger =
    destination === undefined
      ? pino({ level: opts.logLevel })
      : pino({ level: opts.logLevel }, destination);
  const envToken = envAdminToken();
  const cloud = new Cloud(
    {
      httpPort: opts.httpPort,
      mqttPort: opts.mqttPort,
      dataDir: join(dataDir, 'cloud'),
      logLevel: opts.logLevel as 'warn',
      ...(envToken === undefined ? {} : { adminToken: envToken }),
      ...(opts.tlsCert === undefined ? {} : { tlsCert: opts.tlsCert }),
      ...(opts.tlsKey === undefined ? {} : { tlsKey: opts.tlsKey }),
      ...(opts.tlsCa === undefined ? {} : { tlsCa: opts.tlsCa }),
    },
    logger.child({ app: 'cloud' }),
  );
  // Filled in as parts start; shutdown closes whatever is there.
  const running: {
    fleet?: SimulatedFleet;
    ticker?: NodeJS.Timeout;
    http?: { close: () => Promise<void> };
  } = {};
  installShutdown({
    limitMs: DEMO_SHUTDOWN_LIMIT_MS,
    // The demo talks to a person at a terminal: plain lines, not JSON logs.
    logger: {
      info: (details, message) => {
        if (message === 'shutting down') {
          progressLine('');
          console.log(`\n${String(details.signal)}: stopping the fleet and the cloud...`);
        } else if (message === 'shut down cleanly') {
          console.log(`stopped cleanly in ${(Number(details.elapsedMs) / 1000).toFixed(1)} s`);
        } else console.log(message);
      },
      error: (details, message) =>
        console.error(details.err === undefined ? message : `${message}: ${String(details.err)}`),
    },
    close: async () => {
      clearInterval(running.ticker);
      await running.fleet?.close();
      await running.http?.close();
      await cloud.close();
    },
  });

  try {
    await cloud.start();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EADDRINUSE') {
      throw new Error(
        `a port is in use (${(err as Error).message}); pass --http-port 0 --mqtt-port 0 to pick free ones`,
      );
    }
    throw err;
  }
  const urls = cloud.urls;
  // With TLS the demo's own calls trust the cloud's CA alone, as its devices do.
  const caPem = cloud.caPem;
  const http = cloudFetch(urls.http, caPem === undefined ? undefined : { caPem });
  running.http = http;
  const api = new CloudApiClient({
    baseUrl: urls.http,
    adminToken: cloud.adminToken.token,
    fetch: http.fetch,
  });

  const modelPath = join(dataDir, `${DEMO_MODEL}-${DEMO_VERSION}.onnx`);
  const onnx = await demoModel(modelPath);
  const registered = await api.listModels();
  if (!registered.some((m) => m.name === DEMO_MODEL && m.version === DEMO_VERSION)) {
    await api.publishModel({ name: DEMO_MODEL, version: DEMO_VERSION, onnx });
    console.log(`registered ${DEMO_MODEL}@${DEMO_VERSION}`);
  }

  const fleet = new SimulatedFleet({
    cloudUrl: urls.http,
    adminToken: cloud.adminToken.token,
    devices: opts.devices,
    idPrefix: 'demo',
    dataDir: join(dataDir, 'fleet'),
    camera: (i) => new SyntheticCamera({ seed: 1000 + i, fps: opts.fps, defectRate: 0.1 }),
    telemetryIntervalSec: 2,
    ...(caPem === undefined ? {} : { caPem }),
    logger: logger.child({ app: 'sim' }),
  });
  running.fleet = fleet;
  await fleet.start();
  const devices = await api.listDevices();
  const behind = fleet.deviceIds.filter(
    (id) => devices.find((d) => d.id === id)?.desiredModel?.version !== DEMO_VERSION,
  );
  if (behind.length > 0) {
    const rollout = await api.createRollout({
      model: DEMO_MODEL,
      version: DEMO_VERSION,
      devices: behind,
    });
    console.log(`rollout ${rollout.id}: ${DEMO_MODEL}@${DEMO_VERSION} -> ${behind.length} devices`);
  }

  console.log(
    [
      '',
      'Linesight demo is running:',
      `  REST API      ${urls.http}/v1   (docs ${urls.http}/docs)`,
      `  health        ${urls.http}/healthz   metrics ${urls.http}/metrics`,
      `  MQTT broker   ${urls.mqtt}`,
      ...(caPem === undefined
        ? []
        : [
            `  TLS           devices pin the CA in ${opts.tlsCa ?? opts.tlsCert}; for the CLI: NODE_EXTRA_CA_CERTS=${opts.tlsCa ?? opts.tlsCert}`,
          ]),
      `  admin token   ${cloud.adminToken.path ?? 'from LINESIGHT_ADMIN_TOKEN'}`,
      `  data          ${dataDir}`,
      'Ctrl-C stops everything.',
      '',
    ].join('\n'),
  );
  const tick = () => {
    api.listDevices().then(
      (list) => progressLine(summary(list.filter((d) => fleet.deviceIds.includes(d.id))), 5000),
      (err: unknown) => progressLine(`cloud not answering: ${String(err)}`),
    );
  };
  running.ticker = setInterval(tick, 1000);
  tick();
}

/** Loads the demo model, training it from synthetic frames on first run. */
async function demoModel(path: string): Promise<Uint8Array> {
  try {
    await access(path);
    return await readFile(path);
  } catch {
    // Not trained yet: train below.
  }
  console.log('training the demo model on synthetic frames (first run only)...');
  const started = Date.now();
  const samples = await syntheticSamples({ seed: 1, count: 240, defectRate: 0.35 });
  const trained = await trainDefectModel(samples, {
    seed: 1,
    size: 192,
    name: DEMO_MODEL,
    onProgress: trainingProgressPrinter(),
  });
  progressLine('');
  await mkdir(resolve(path, '..'), { recursive: true });
  await writeFile(path, trained.onnx);
  console.log(
    `trained in ${((Date.now() - started) / 1000).toFixed(1)} s: validation AUROC ${trained.metrics.auroc?.toFixed(3) ?? 'n/a'}, F1 ${trained.metrics.f1?.toFixed(3) ?? 'n/a'} -> ${path}`,
  );
  return trained.onnx;
}

/** The one-line fleet summary. */
export function summary(devices: DeviceSummary[]): string {
  const online = devices.filter((d) => d.online);
  // An offline device scores nothing now, whatever its last telemetry said.
  const fps = online.reduce((n, d) => n + (d.fps ?? 0), 0);
  const frames = devices.reduce((n, d) => n + d.framesProcessed, 0);
  const defects = devices.reduce((n, d) => n + d.defects, 0);
  const versions = new Map<string, number>();
  for (const d of devices) {
    const key = d.model ? `${d.model.name}@${d.model.version}` : 'no model';
    versions.set(key, (versions.get(key) ?? 0) + 1);
  }
  const models = [...versions].map(([k, n]) => `${k} x${n}`).join(', ');
  const pct = frames === 0 ? 0 : (100 * defects) / frames;
  return `devices ${online.length}/${devices.length} online | ${fps.toFixed(1)} frames/s | ${frames} frames, ${defects} defects (${pct.toFixed(1)}%) | ${models}`;
}
