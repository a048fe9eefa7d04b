import { parseArgs } from 'node:util';
import type { ChildProcess } from 'node:child_process';
import type { SimulatedFleet } from '@linesight/firmware-sim';

/** What a simulated-fleet process is started with (its arguments; the admin token comes from the environment). */
export interface FleetProcessSettings {
  cloudUrl: string;
  devices: number;
  dataDir: string;
  /** Device ids are `<idPrefix>-001`...; each fleet process of one run has its own. */
  idPrefix: string;
  /** Camera frame rate of each device, for fleets that run cameras. */
  fps?: number;
}

/**
 * Node's worker-pool size in a simulated-fleet process: its hundreds of agents share one pool,
 * and with Node's default of 4 threads one agent's download fsync waits behind all the others'
 * file, compression and hashing jobs (fsync median 620-806 ms behind 64 queued jobs, against
 * 108-132 ms with 64 threads, load 12-19). A real agent runs alone and keeps the default.
 */
export const FLEET_THREADPOOL_SIZE = 64;

/** The environment of a simulated-fleet process: this one's, its admin token, a larger pool. */
export function fleetProcessEnv(adminToken: string): NodeJS.ProcessEnv {
  return {
    ...process.env,
    LINESIGHT_ADMIN_TOKEN: adminToken,
    UV_THREADPOOL_SIZE: process.env.UV_THREADPOOL_SIZE ?? String(FLEET_THREADPOOL_SIZE),
  };
}

/** How one kind of fleet process reads its arguments. */
export interface FleetProcessArgOptions {
  /** The process's name in the usage line. */
  name: string;
  defaultIdPrefix: string;
  /** Present when the process takes `--fps`, with its default. */
  fps?: { default: number };
}

/** The command-line arguments that carry `settings` to a fleet process. */
export function fleetProcessArgs(settings: FleetProcessSettings): string[] {
  return [
    '--cloud',
    settings.cloudUrl,
    '--devices',
    String(settings.devices),
    '--data-dir',
    settings.dataDir,
    ...(settings.fps === undefined ? [] : ['--fps', String(settings.fps)]),
    '--id-prefix',
    settings.idPrefix,
  ];
}

/** Reads a fleet process's arguments; throws on a missing, unknown or malformed one. */
export function parseFleetProcessArgs(
  args: readonly string[],
  o: FleetProcessArgOptions,
): FleetProcessSettings {
  const { values } = parseArgs({
    args: [...args],
    options: {
      cloud: { type: 'string' },
      devices: { type: 'string' },
      'data-dir': { type: 'string' },
      'id-prefix': { type: 'string', default: o.defaultIdPrefix },
      ...(o.fps === undefined ? {} : { fps: { type: 'string', default: String(o.fps.default) } }),
    },
    strict: true,
  });
  const devices = Number(values.devices);
  if (values.cloud === undefined || values['data-dir'] === undefined)
    throw new Error(
      `usage: ${o.name} --cloud URL --devices N --data-dir DIR${o.fps === undefined ? '' : ' [--fps F]'} [--id-prefix P]`,
    );
  if (!Number.isInteger(devices) || devices < 1)
    throw new Error(`--devices must be a positive integer, not ${values.devices}`);
  const settings: FleetProcessSettings = {
    cloudUrl: values.cloud,
    devices,
    dataDir: values['data-dir'],
    idPrefix: values['id-prefix'],
  };
  if (o.fps !== undefined) {
    const fps = Number(values.fps);
    if (!(fps > 0)) throw new Error(`--fps must be above 0, not ${values.fps}`);
    settings.fps = fps;
  }
  return settings;
}

/** What every fleet process says when it started, or why it could not. */
export type FleetStartMessage =
  | {
      type: 'ready';
      devices: number;
      startSeconds: number;
      /** The part of startSeconds spent provisioning new devices. */
      provisionSeconds: number;
    }
  | { type: 'error'; message: string };

/** Starts the fleet and says `ready` (with its start time), or says `error` and stops. */
export async function startFleetProcess(
  fleet: SimulatedFleet,
  send: (m: FleetStartMessage) => void,
  stop: () => Promise<void>,
): Promise<void> {
  try {
    const started = Date.now();
    await fleet.start();
    send({
      type: 'ready',
      devices: fleet.agents.length,
      startSeconds: (Date.now() - started) / 1000,
      provisionSeconds: fleet.provisionSeconds,
    });
  } catch (err) {
    send({ type: 'error', message: err instanceof Error ? err.message : String(err) });
    await stop();
  }
}

/** Messages from a fleet process, each waited for by what it matches. */
export interface FleetInbox<M> {
  /** The next message `match` accepts; rejects when the fleet fails, exits or does not answer in time. */
  next(match: (m: M) => boolean, timeoutMs: number): Promise<M>;
}

/**
 * Reads a fleet process's messages: each goes to the first waiter it matches;
 * one nobody waits for is kept for a later `next` with `keepUnmatched`, else
 * dropped. An `error` message, or the process's exit, fails every wait then
 * and after.
 */
export function fleetInbox<M extends { type: string }>(
  child: ChildProcess,
  o: { keepUnmatched: boolean },
): FleetInbox<M> {
  const kept: M[] = [];
  const waiters: {
    match: (m: M) => boolean;
    resolve: (m: M) => void;
    reject: (e: Error) => void;
  }[] = [];
  let failure: Error | undefined;
  const fail = (err: Error) => {
    failure ??= err;
    for (const w of waiters.splice(0)) w.reject(failure);
  };
  child.on('message', (raw) => {
    const m = raw as M;
    if (m.type === 'error')
      return fail(new Error(`simulated fleet: ${(m as { message?: string }).message}`));
    const i = waiters.findIndex((w) => w.match(m));
    if (i >= 0) waiters.splice(i, 1)[0]?.resolve(m);
    else if (o.keepUnmatched) kept.push(m);
  });
  child.once('exit', (code) => fail(new Error(`the simulated fleet exited (${code})`)));
  return {
    next: (match, timeoutMs) =>
      new Promise<M>((resolve, reject) => {
        const i = kept.findIndex(match);
        if (i >= 0) return resolve(kept.splice(i, 1)[0] as M);
        if (failure) return reject(failure);
        const waiter = {
          match,
          resolve: (m: M) => {
            clearTimeout(timer);
            resolve(m);
          },
          reject: (e: Error) => {
            clearTimeout(timer);
            reject(e);
          },
        };
        const timer = setTimeout(() => {
          waiters.splice(waiters.indexOf(waiter), 1);
          reject(new Error('the simulated fleet did not answer in time'));
        }, timeoutMs);
        waiters.push(waiter);
      }),
  };
}
