import { Writable } from 'node:stream';
import mqtt from 'mqtt';
import pino from 'pino';
import { SimulatedFleet } from '@linesight/firmware-sim';
import { makeCamera } from '../camera-factory.ts';
import {
  fleetProcessArgs,
  parseFleetProcessArgs,
  startFleetProcess,
  type FleetProcessSettings,
  type FleetStartMessage,
} from '../fleet-process.ts';

/** What the soak asks of the fleet process. */
export type SoakCommand =
  | { type: 'stats' }
  | { type: 'restart'; index: number }
  | { type: 'takeover'; index: number }
  | { type: 'pause-cameras' }
  | { type: 'stop' };

/** One device's counters, summed over its restarts. */
export interface SoakDeviceStats {
  deviceId: string;
  /** Verdicts the device produced (scored and unknown frames): each is a record in its store. */
  verdicts: number;
  /** Records not yet acknowledged by the broker, now. */
  backlog: number;
  /** Records the store could not write or evicted (compacted verdict rows count as kept). */
  lostWrites: number;
  droppedOverload: number;
  liveVersion: string | null;
}

/** Messages from the fleet process to the soak. */
export type SoakFleetMessage =
  | FleetStartMessage
  | {
      type: 'stats';
      devices: SoakDeviceStats[];
      memory: NodeJS.MemoryUsage;
      /** Warnings and errors the fleet logged, by message. */
      logged: { warn: number; error: number; top: Record<string, number> };
    }
  | { type: 'done'; what: string; ok: boolean; message?: string };

/** The fleet process's settings (its arguments; the admin token comes from the environment). */
export type SoakFleetSettings = FleetProcessSettings & { fps: number };

/** The command-line arguments that carry `settings` to the fleet process. */
export function soakFleetArgs(settings: SoakFleetSettings): string[] {
  return fleetProcessArgs(settings);
}

/** Reads the fleet process's arguments; throws on a missing or malformed one. */
export function parseSoakFleetArgs(args: readonly string[]): SoakFleetSettings {
  const settings = parseFleetProcessArgs(args, {
    name: 'soak-fleet',
    defaultIdPrefix: 'soak',
    fps: { default: 2 },
  });
  return { ...settings, fps: settings.fps ?? 2 };
}

/** A pino destination that counts warnings and errors by message (the soak reports them) and keeps nothing else. */
function countingLog() {
  const logged = { warn: 0, error: 0, top: {} as Record<string, number> };
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString('utf8').split('\n')) {
        if (line === '') continue;
        try {
          const l = JSON.parse(line) as { level: number; msg?: string };
          if (l.level >= 50) logged.error++;
          else if (l.level >= 40) logged.warn++;
          const key = (l.msg ?? '').slice(0, 80);
          // Bounded: at most 50 distinct messages are tallied.
          if (key in logged.top || Object.keys(logged.top).length < 50)
            logged.top[key] = (logged.top[key] ?? 0) + 1;
        } catch {
          // not JSON: ignore
        }
      }
      done();
    },
  });
  return { logged, stream };
}

/**
 * The soak's fleet process: N real agents (as `linesight sim` runs them: one
 * synthetic camera and one model worker each), restarted or disconnected on
 * request, with their counters reported over IPC.
 */
export async function runSoakFleet(
  settings: SoakFleetSettings & { adminToken: string },
): Promise<void> {
  const send = (m: SoakFleetMessage) => process.send?.(m);
  const { logged, stream } = countingLog();
  const cameras: { close(): Promise<void> }[] = [];
  let paused = false;
  const fleet = new SimulatedFleet({
    cloudUrl: settings.cloudUrl,
    adminToken: settings.adminToken,
    devices: settings.devices,
    idPrefix: settings.idPrefix,
    dataDir: settings.dataDir,
    camera: (i) => {
      // A restarted device gets a camera that stays dark once the soak is draining.
      const camera = makeCamera(
        { kind: 'synthetic' },
        { fps: paused ? 0.001 : settings.fps, seed: 1000 + i },
      );
      cameras[i] = camera;
      return camera;
    },
    telemetryIntervalSec: 10,
    logger: pino({ level: 'warn', base: { app: 'soak-fleet' } }, stream),
    startConcurrency: 10,
  });
  // Counters of agents closed by a restart, added to their successors'.
  const retired = new Map<
    number,
    { verdicts: number; droppedOverload: number; lostWrites: number }
  >();
  const stats = (): SoakDeviceStats[] =>
    fleet.agents.map((agent, i) => {
      const f = agent.frames;
      const store = agent.edgeData.store;
      const r = retired.get(i) ?? { verdicts: 0, droppedOverload: 0, lostWrites: 0 };
      return {
        deviceId: fleet.deviceIds[i] as string,
        verdicts: r.verdicts + f.scored + f.unknown,
        backlog: store?.backlog.verdicts ?? 0,
        lostWrites: r.lostWrites + (store?.lostWrites ?? 0),
        droppedOverload: r.droppedOverload + f.droppedOverload,
        liveVersion: agent.liveModel?.version ?? null,
      };
    });
  const stop = async () => {
    await fleet.close().catch(() => undefined);
    process.exit(0);
  };
  const handle = async (m: SoakCommand): Promise<void> => {
    switch (m.type) {
      case 'stats':
        send({ type: 'stats', devices: stats(), memory: process.memoryUsage(), logged });
        return;
      case 'restart': {
        const agent = fleet.agents[m.index];
        if (agent === undefined) throw new Error(`no device ${m.index}`);
        const before = retired.get(m.index) ?? { verdicts: 0, droppedOverload: 0, lostWrites: 0 };
        // Closing finishes the frames in flight, so the counters are read after it.
        const closing = fleet.restart(m.index);
        await closing;
        const f = agent.frames;
        retired.set(m.index, {
          verdicts: before.verdicts + f.scored + f.unknown,
          droppedOverload: before.droppedOverload + f.droppedOverload,
          lostWrites: before.lostWrites + (agent.edgeData.store?.lostWrites ?? 0),
        });
        send({ type: 'done', what: 'restart', ok: true });
        return;
      }
      case 'takeover': {
        // Logging in with the device's own client id makes the broker drop its live session.
        const creds = fleet.credentialsOf(m.index);
        const deviceId = fleet.deviceIds[m.index];
        if (creds === undefined || deviceId === undefined) throw new Error(`no device ${m.index}`);
        const client = await mqtt.connectAsync(creds.mqttUrl, {
          clientId: deviceId,
          username: creds.username,
          password: creds.password,
          protocolVersion: 4,
          reconnectPeriod: 0,
          connectTimeout: 10_000,
        });
        await client.endAsync();
        send({ type: 'done', what: 'takeover', ok: true });
        return;
      }
      case 'pause-cameras':
        paused = true;
        await Promise.all(cameras.map((c) => c.close()));
        send({ type: 'done', what: 'pause-cameras', ok: true });
        return;
      case 'stop':
        await stop();
    }
  };
  process.on('message', (raw) => {
    const m = raw as SoakCommand;
    handle(m).catch((err: unknown) =>
      send({
        type: 'done',
        what: m.type,
        ok: false,
        message: err instanceof Error ? err.message : String(err),
      }),
    );
  });
  process.once('disconnect', () => void stop());
  await startFleetProcess(fleet, send, stop);
}
