import { Command, Option } from 'commander';
import { runAgentProcess } from '@linesight/agent/process';
import { openCamera } from '../camera-open.ts';
import { parseCameraSpec, type CameraSpec } from '../camera-spec.ts';
import {
  parseExtensions,
  parsePort,
  parsePositive,
  parsePositiveInt,
  logLevelOption,
} from '../options.ts';
import { logDestination, logPrettyOption } from '../log-output.ts';
import { installShutdown } from '../shutdown.ts';

/** `linesight agent`: one device agent. */
export function agentCommand(): Command {
  return (
    new Command('agent')
      .description('run a device agent: score camera frames with the model the cloud assigns')
      .requiredOption('--device-id <id>', 'this device id (as provisioned)')
      .option(
        '--cloud <url>',
        'cloud HTTP URL, e.g. http://127.0.0.1:8080 (default: from device.json)',
      )
      .option(
        '--mqtt <url>',
        'MQTT broker URL, e.g. mqtt://127.0.0.1:1883 (default: from device.json)',
      )
      .requiredOption(
        '--camera <source>',
        "synthetic, synthetic:SEED, synthetic:SEED:KNOBS (drift tests: defects=SHARE,size=PX,after=FRAMES,brightness=DELTA,contrast=FACTOR,blur=PX,freeze,move=SHARE), folder:DIR (images in name order, looping), http:URL (snapshot polled at --fps) or mjpeg-exec:COMMAND (MJPEG on the command's stdout, e.g. ffmpeg or rpicam-vid; --fps caps it)",
        parseCameraSpec,
      )
      .option('--data-dir <dir>', 'where credentials and models live (default ./data/agent-<id>)')
      .option(
        '--credentials <file>',
        'provisioning file (default <data-dir>/device.json; see `linesight device provision`)',
      )
      .option(
        '--client-cert <file>',
        "client certificate (PEM) naming this device id, signed by the cloud's --tls-client-ca: logs in without the password (docs/security.md#tls)",
      )
      .option('--client-key <file>', 'private key (PEM) of --client-cert')
      .option(
        '--config <file>',
        'local configuration, YAML or JSON: outputs to the line (plant MQTT, Modbus, webhook, command), http, tunables (see docs/line-outputs.md); options given here win',
      )
      .option(
        '--http-port <port>',
        'serve /healthz, /metrics, /verdicts and /verdicts/stream (SSE) on this port (0 = any free port; default off)',
        parsePort,
      )
      .option('--http-host <address>', 'address of the HTTP endpoint (default 127.0.0.1)')
      .option('--fps <n>', 'camera frame rate', parsePositive, 10)
      .option(
        '--ext <list>',
        'folder camera: extensions to replay, comma-separated (default jpg,jpeg,png,webp,tif,tiff; a .png beside a .jpg of the same stem is a mask and never replayed)',
        parseExtensions,
      )
      .option('--telemetry-interval <sec>', 'seconds between telemetry messages', parsePositive, 5)
      .addOption(logLevelOption('info'))
      .addOption(logPrettyOption())
      .option(
        '--watchdog-ms <ms>',
        'abandon an inference slower than this and publish its frame as unknown (default 2000)',
        parsePositiveInt,
      )
      .option(
        '--watchdog-trips <n>',
        'quarantine the live version after this many consecutive watchdog trips and fall back to last-known-good; without one, its frames are published as unknown until another version is assigned (default 3)',
        parsePositiveInt,
      )
      .option(
        '--crash-loop-starts <n>',
        'agent starts after a swap, before the version ran stably, that quarantine it (default 3)',
        parsePositiveInt,
      )
      .option(
        '--stable-after <sec>',
        'seconds a new version must run without a restart to count as stable (default 60)',
        parsePositive,
      )
      .option(
        '--window-sec <sec>',
        'telemetry window length kept in the local store (default 60; desired state may change it)',
        parsePositive,
      )
      .option(
        '--store-quota-mb <mb>',
        'disk quota of the local store and its sampled images together (default 2048)',
        parsePositive,
      )
      .option(
        '--forward-rate <n>',
        'stored records sent per second at most after an outage (default 2000)',
        parsePositiveInt,
      )
      .option(
        '--line-guard',
        'supervised mode: this process owns the camera and the outputs and scores in a worker process it restarts; every frame gets a verdict (unknown while the worker restarts; config key lineGuard; docs/agent.md)',
      )
      .option(
        '--verdict-budget-ms <ms>',
        'line guard: answer a frame unknown when the worker has not scored it this long after it arrived (default 800)',
        parsePositiveInt,
      )
      // How a line guard starts its worker: the same command, frames over the IPC channel.
      .addOption(new Option('--guard-worker').hideHelp())
      .action(
        async (opts: {
          deviceId: string;
          cloud?: string;
          mqtt?: string;
          camera: CameraSpec;
          dataDir?: string;
          credentials?: string;
          clientCert?: string;
          clientKey?: string;
          fps: number;
          ext?: string[];
          telemetryInterval: number;
          logLevel: string;
          logPretty?: boolean;
          watchdogMs?: number;
          watchdogTrips?: number;
          crashLoopStarts?: number;
          stableAfter?: number;
          config?: string;
          httpPort?: number;
          httpHost?: string;
          windowSec?: number;
          storeQuotaMb?: number;
          forwardRate?: number;
          lineGuard?: boolean;
          verdictBudgetMs?: number;
          guardWorker?: boolean;
        }) => {
          const app = await runAgentProcess({
            deviceId: opts.deviceId,
            cloudUrl: opts.cloud,
            mqttUrl: opts.mqtt,
            dataDir: opts.dataDir ?? `./data/agent-${opts.deviceId}`,
            ...(opts.credentials ? { credentialsPath: opts.credentials } : {}),
            ...(opts.clientCert ? { clientCert: opts.clientCert } : {}),
            ...(opts.clientKey ? { clientKey: opts.clientKey } : {}),
            camera: await openCamera(opts.camera, {
              fps: opts.fps,
              seed: seedFromId(opts.deviceId),
              ...(opts.ext ? { ext: opts.ext } : {}),
            }),
            telemetryIntervalSec: opts.telemetryInterval,
            logLevel: opts.logLevel,
            ...(opts.logPretty ? { logDestination: logDestination(true) } : {}),
            watchdogMs: opts.watchdogMs,
            watchdogTrips: opts.watchdogTrips,
            crashLoopStarts: opts.crashLoopStarts,
            stableAfterSec: opts.stableAfter,
            ...(opts.config ? { configFile: opts.config } : {}),
            ...(opts.httpPort === undefined ? {} : { httpPort: opts.httpPort }),
            ...(opts.httpHost ? { httpHost: opts.httpHost } : {}),
            ...(opts.windowSec === undefined ? {} : { windowSec: opts.windowSec }),
            ...(opts.storeQuotaMb === undefined
              ? {}
              : { storeQuotaBytes: Math.round(opts.storeQuotaMb * 1024 * 1024) }),
            ...(opts.forwardRate === undefined ? {} : { forwardRecordsPerSec: opts.forwardRate }),
            env: process.env,
            ...(opts.lineGuard === true ? { lineGuard: true } : {}),
            ...(opts.verdictBudgetMs === undefined
              ? {}
              : { verdictBudgetMs: opts.verdictBudgetMs }),
            ...(opts.guardWorker === true ? { guardWorker: true } : {}),
            guardWorkerLaunch: {
              modulePath: process.argv[1]!,
              args: [
                ...process.argv.slice(2).filter((a) => a !== '--line-guard'),
                '--guard-worker',
              ],
              // systemd's notifications are the guard's.
              env: withoutSystemd(process.env),
            },
          });
          installShutdown({
            signals: app.signals,
            logger: app.logger,
            limitMs: app.shutdownLimitMs,
            close: () => app.close(),
            pending: () => app.pending(),
          });
        },
      )
  );
}

function withoutSystemd(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const rest = { ...env };
  for (const name of ['NOTIFY_SOCKET', 'WATCHDOG_USEC', 'WATCHDOG_PID']) delete rest[name];
  return rest;
}

/** A stable camera seed per device id, so each device sees its own frames. */
export function seedFromId(id: string): number {
  let h = 2166136261;
  for (const ch of id) h = Math.imul(h ^ ch.charCodeAt(0), 16777619);
  return h >>> 0;
}
