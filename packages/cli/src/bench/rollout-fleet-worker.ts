import { parseArgs } from 'node:util';
import pino from 'pino';
import { FramePoolCamera, SimulatedFleet } from '@linesight/firmware-sim';

/** Messages from the simulated fleet process to the bench. */
export type FleetMessage =
  | { type: 'ready'; devices: number; startSeconds: number }
  | { type: 'reached'; version: string; atMs: number[] }
  | { type: 'error'; message: string };

/** What the fleet process is started with (its arguments; the admin token comes from the environment). */
export interface FleetWorkerSettings {
  cloudUrl: string;
  devices: number;
  dataDir: string;
  /** Device ids are `<idPrefix>-001`...; each fleet process of one bench has its own. */
  idPrefix: string;
}

/** The command-line arguments that carry `settings` to the fleet process. */
export function fleetWorkerArgs(settings: FleetWorkerSettings): string[] {
  return [
    '--cloud',
    settings.cloudUrl,
    '--devices',
    String(settings.devices),
    '--data-dir',
    settings.dataDir,
    '--id-prefix',
    settings.idPrefix,
  ];
}

/** Reads the fleet process's arguments; throws on a missing or malformed one. */
export function parseFleetWorkerArgs(args: readonly string[]): FleetWorkerSettings {
  const { values } = parseArgs({
    args: [...args],
    options: {
      cloud: { type: 'string' },
      devices: { type: 'string' },
      'data-dir': { type: 'string' },
      'id-prefix': { type: 'string', default: 'bench' },
    },
    strict: true,
  });
  const devices = Number(values.devices);
  if (values.cloud === undefined || values['data-dir'] === undefined)
    throw new Error(
      'usage: bench-rollout-fleet --cloud URL --devices N --data-dir DIR [--id-prefix P]',
    );
  if (!Number.isInteger(devices) || devices < 1)
    throw new Error(`--devices must be a positive integer, not ${values.devices}`);
  return {
    cloudUrl: values.cloud,
    devices,
    dataDir: values['data-dir'],
    idPrefix: values['id-prefix'],
  };
}

/**
 * The fleet process: provisions and runs the devices, reports (over IPC) when each runs a
 * version, and stops on a `stop` message or when the bench goes away.
 */
export async function runFleetWorker(
  settings: FleetWorkerSettings & { adminToken: string },
): Promise<void> {
  const send = (m: FleetMessage) => process.send?.(m);
  const fleet = new SimulatedFleet({
    cloudUrl: settings.cloudUrl,
    adminToken: settings.adminToken,
    devices: settings.devices,
    idPrefix: settings.idPrefix,
    dataDir: settings.dataDir,
    camera: () => new FramePoolCamera({ frames: [], fps: 0 }),
    telemetryIntervalSec: 30,
    logger: pino({ level: 'error' }),
    shareModels: true,
    startConcurrency: 50,
  });
  let watcher: NodeJS.Timeout | undefined;
  const stop = async () => {
    clearInterval(watcher);
    await fleet.close().catch(() => undefined);
    process.exit(0);
  };
  process.on('message', (raw) => {
    const m = raw as { type: string; version?: string };
    if (m.type === 'stop') void stop();
    if (m.type === 'watch' && m.version !== undefined) {
      const version = m.version;
      const atMs = fleet.agents.map(() => 0);
      clearInterval(watcher);
      watcher = setInterval(() => {
        const now = Date.now();
        let left = 0;
        for (const [i, agent] of fleet.agents.entries()) {
          if (atMs[i] === 0 && agent.liveModel?.version === version) atMs[i] = now;
          if (atMs[i] === 0) left++;
        }
        if (left === 0) {
          clearInterval(watcher);
          send({ type: 'reached', version, atMs });
        }
      }, 20);
    }
  });
  process.once('disconnect', () => void stop());
  try {
    const started = Date.now();
    await fleet.start();
    send({
      type: 'ready',
      devices: fleet.agents.length,
      startSeconds: (Date.now() - started) / 1000,
    });
  } catch (err) {
    send({ type: 'error', message: err instanceof Error ? err.message : String(err) });
    await stop();
  }
}
