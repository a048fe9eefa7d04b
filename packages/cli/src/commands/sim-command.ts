import { readFile } from 'node:fs/promises';
import { Command, Option } from 'commander';
import { LinesightError } from '@linesight/protocol';
import pino from 'pino';
import { SimulatedFleet } from '@linesight/firmware-sim';
import { cloudClient } from '../cloud-options.ts';
import { makeCamera } from '../camera-factory.ts';
import { parseCameraSpec, type CameraSpec } from '../camera-spec.ts';
import { parsePositive, parsePositiveInt, logLevelOption } from '../options.ts';
import { logDestination, logPrettyOption } from '../log-output.ts';
import { installShutdown } from '../shutdown.ts';

/** How long closing every simulated device (store flush, models, MQTT) may take after Ctrl-C. */
const SIM_SHUTDOWN_LIMIT_MS = 60_000;

/** `linesight sim`: a simulated fleet of real agents on simulated cameras. */
export function simCommand(): Command {
  const sim = new Command('sim')
    .description(
      'run a simulated fleet: N real agents on synthetic or replayed cameras, provisioned through the REST API',
    )
    .requiredOption('--devices <n>', 'number of devices', parsePositiveInt)
    .option(
      '--camera <source>',
      'synthetic, folder:DIR, http:URL or mjpeg-exec:COMMAND (one command per device; --fps caps it)',
      parseCameraSpec,
      {
        kind: 'synthetic',
      } as CameraSpec,
    )
    .option('--mqtt <url>', 'MQTT URL (default: the one the cloud hands out)')
    .option('--fps <n>', 'frames per second per device', parsePositive, 5)
    .option('--id-prefix <prefix>', 'device ids are <prefix>-001, <prefix>-002, ...', 'sim')
    .option('--data-dir <dir>', 'where device credentials and models live', './data/sim')
    .option(
      '--ca <file>',
      "the CA (PEM) of a cloud on HTTPS, trusted alone for the fleet's provisioning calls; devices pin the CA provisioning gives them",
    )
    .addOption(
      new Option(
        '--cloud <url>',
        'cloud HTTP URL (default LINESIGHT_CLOUD, else "cloud" in ./linesight.json or ~/.config/linesight/config.json)',
      ),
    )
    .option(
      '--token <token>',
      'admin token (default LINESIGHT_ADMIN_TOKEN, else "token" in the config file, else ./data/admin-token)',
    )
    .addOption(logLevelOption('warn'))
    .addOption(logPrettyOption());
  return sim.action(
    async (opts: {
      devices: number;
      cloud?: string;
      camera: CameraSpec;
      mqtt?: string;
      fps: number;
      idPrefix: string;
      dataDir: string;
      ca?: string;
      token?: string;
      logLevel: string;
      logPretty?: boolean;
    }) => {
      const logOptions = { level: opts.logLevel, base: { app: 'sim' } };
      const destination = logDestination(opts.logPretty);
      const logger = destination === undefined ? pino(logOptions) : pino(logOptions, destination);
      // --data-dir is the fleet's folder here: the admin token file is the default ./data one.
      const { adminToken, cloudUrl } = await cloudClient({
        ...(opts.cloud ? { cloud: opts.cloud } : {}),
        ...(opts.token ? { token: opts.token } : {}),
        dataDir: './data',
      });
      const fleet = new SimulatedFleet({
        cloudUrl,
        ...(opts.mqtt ? { mqttUrl: opts.mqtt } : {}),
        adminToken,
        devices: opts.devices,
        idPrefix: opts.idPrefix,
        dataDir: opts.dataDir,
        camera: (i) => makeCamera(opts.camera, { fps: opts.fps, seed: 1000 + i }),
        ...(opts.ca === undefined ? {} : { caPem: await readCaFile(opts.ca) }),
        logger,
      });
      await fleet.start();
      console.log(
        `simulated fleet running: ${fleet.deviceIds.length} devices (${fleet.deviceIds[0]} ... ${fleet.deviceIds.at(-1)}); Ctrl-C stops`,
      );
      installShutdown({ logger, limitMs: SIM_SHUTDOWN_LIMIT_MS, close: () => fleet.close() });
    },
  );
}

/** The --ca file: readable, and PEM with a certificate in it. */
async function readCaFile(path: string): Promise<string> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new LinesightError('ERR_CLI_USAGE', `--ca ${path}: ${(err as Error).message}`, {
      cause: err,
    });
  }
  if (!text.includes('-----BEGIN CERTIFICATE-----'))
    throw new LinesightError('ERR_CLI_USAGE', `--ca ${path}: not a PEM certificate`);
  return text;
}
