import pino from 'pino';
import { FramePoolCamera, SimulatedFleet } from '@linesight/firmware-sim';
import {
  fleetProcessArgs,
  parseFleetProcessArgs,
  startFleetProcess,
  type FleetProcessSettings,
  type FleetStartMessage,
} from '../fleet-process.ts';

/** Messages from the simulated fleet process to the bench. */
export type FleetMessage =
  | FleetStartMessage
  /** When each device first ran `version` (ms since the epoch; 0 for one that has not, in a report the bench asked for). */
  | { type: 'reached'; version: string; atMs: number[] };

/**
 * Agent settings of the simulated devices. An idle agent looks for stored records to
 * forward ten times a second and checks its disk quota every second: about 1 ms of CPU
 * a second (90 us a look, measured here), nothing on a device of its own, but 3,300
 * agents in one process would need more than three cores for it alone, and the fleet
 * fell behind its own keepalives. The benchmark's devices have no camera, so they only
 * store a window a minute and a few events: they look every 2 s and check every 30 s.
 */
export const SIMULATED_AGENT_CONFIG = { forwardTickMs: 2000, storeQuotaCheckMs: 30_000 };

/** What the fleet process is started with (its arguments; the admin token comes from the environment). */
export type FleetWorkerSettings = Omit<FleetProcessSettings, 'fps'>;

/** The command-line arguments that carry `settings` to the fleet process. */
export function fleetWorkerArgs(settings: FleetWorkerSettings): string[] {
  return fleetProcessArgs(settings);
}

/** Reads the fleet process's arguments; throws on a missing or malformed one. */
export function parseFleetWorkerArgs(args: readonly string[]): FleetWorkerSettings {
  return parseFleetProcessArgs(args, { name: 'bench-rollout-fleet', defaultIdPrefix: 'bench' });
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
    agentConfig: SIMULATED_AGENT_CONFIG,
  });
  let watcher: NodeJS.Timeout | undefined;
  const stop = async () => {
    clearInterval(watcher);
    await fleet.close().catch(() => undefined);
    process.exit(0);
  };
  /** When each device first ran the watched version (0: not yet). */
  let watched: { version: string; atMs: number[] } | undefined;
  process.on('message', (raw) => {
    const m = raw as { type: string; version?: string };
    if (m.type === 'stop') void stop();
    if (m.type === 'watch' && m.version !== undefined) {
      const version = m.version;
      const atMs = fleet.agents.map(() => 0);
      watched = { version, atMs };
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
    // The bench gave up waiting for every device: where they are now (0 for the ones that have not).
    if (m.type === 'report' && watched !== undefined && watched.version === m.version) {
      clearInterval(watcher);
      send({ type: 'reached', version: watched.version, atMs: watched.atMs });
    }
  });
  process.once('disconnect', () => void stop());
  await startFleetProcess(fleet, send, stop);
}
