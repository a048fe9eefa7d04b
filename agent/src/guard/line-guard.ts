import type pino from 'pino';
import { describeError } from '@linesight/protocol';
import type { AgentHttpStatus } from '../http/agent-http-server.ts';
import type { AgentSetup, RunAgentOptions } from '../agent-setup.ts';
import { LocalOutputs } from '../outputs/local-outputs.ts';
import { SystemdNotifier } from '../systemd/systemd-notifier.ts';
import { VerdictGuard } from './verdict-guard.ts';
import { WorkerSupervisor, type WorkerLaunch } from './worker-supervisor.ts';

/** Unknowns kept for the next worker's verdict log: an hour of frames at 10 frames/s. */
const HANDOVER_MAX = 36_000;

/** Frames a frozen or far too slow worker may hold before new ones skip it (5 s at 10 frames/s). */
const MAX_BEHIND = 50;

/**
 * The worker runs this much nicer than the guard: short of CPU, the camera and the line's
 * answers come first (the guard needs little; the worker gets the rest).
 */
const WORKER_NICE_INCREMENT = 5;

/** How long a signal-initiated shutdown of the guard may take (its worker's included). */
const SHUTDOWN_LIMIT_MS = 40_000;

/** A started line guard: the process that owns the camera and the outputs. */
export interface LineGuardApp {
  readonly guard: VerdictGuard;
  readonly supervisor: WorkerSupervisor;
  readonly logger: pino.Logger;
  readonly shutdownLimitMs: number;
  /** The local HTTP endpoint's URL, when it is on. */
  readonly httpUrl: string | undefined;
  /** Camera, pending frames answered, worker stopped, outputs closed; memoized. */
  close(): Promise<void>;
  pending(): Record<string, unknown>;
}

/**
 * Runs the line guard: the camera and the line's local outputs (plant MQTT,
 * Modbus, SSE/HTTP, webhook, command) in this process, the full agent in a
 * worker process it forks with `launch` and restarts. The line gets a verdict
 * for every frame within `verdictBudgetMs` (see {@link VerdictGuard}).
 */
export async function runLineGuard(
  setup: AgentSetup,
  options: RunAgentOptions,
  launch: WorkerLaunch,
): Promise<LineGuardApp> {
  const { config } = setup;
  const logger = setup.logger.child({ component: 'guard' });
  const budgetMs = config.verdictBudgetMs;
  const guard: VerdictGuard = new VerdictGuard({
    deviceId: config.deviceId,
    budgetMs,
    publish: (result) => outputs.publish(result),
    send: (frame) => sup.send(frame),
    onCameraError: (err) => logger.error({ err: describeError(err) }, 'camera error'),
    handoverMax: HANDOVER_MAX,
    maxBehind: MAX_BEHIND,
    recordLive: (result): boolean => sup.recordLive(result),
    logger,
  });
  const sup = new WorkerSupervisor({
    launch,
    guard,
    logger,
    workerNiceIncrement: WORKER_NICE_INCREMENT,
  });
  const status = (): AgentHttpStatus => {
    const worker = sup.status;
    const c = guard.counters;
    return {
      deviceId: config.deviceId,
      phase: worker?.phase ?? 'starting',
      model: worker?.model ?? null,
      cloudConnected: worker?.cloudConnected ?? false,
      cloudReconnects: worker?.cloudReconnects ?? 0,
      swaps: worker?.swaps ?? 0,
      // What the line was told, over the guard's life (a worker's own counters restart with it).
      frames: { ...c.frames },
      errors: worker?.errors ?? 0,
      watchdogTrips: worker?.watchdogTrips ?? 0,
      circuitOpenFrames: worker?.circuitOpenFrames ?? 0,
      guard: {
        workerPid: guard.workerPid ?? null,
        workerRestarts: sup.stats.restarts,
        crashLoop: sup.stats.crashLoop,
        verdictBudgetMs: budgetMs,
        unknownNoWorker: c.unknownNoWorker,
        unknownTimeout: c.unknownTimeout + c.unknownBehind,
        unknownWorkerExit: c.unknownWorkerExit,
        lateResults: c.lateResults,
        handoverPending: guard.handoverSize,
        handoverDropped: c.handoverDropped,
      },
    };
  };
  const outputs = new LocalOutputs({
    deviceId: config.deviceId,
    outputs: config.outputs,
    ...(config.http ? { http: config.http } : {}),
    status,
    logger: setup.logger.child({ component: 'outputs' }),
  });
  const notifier = new SystemdNotifier({
    socketPath: options.env?.NOTIFY_SOCKET,
    watchdogUsec: options.env?.WATCHDOG_USEC,
    watchdogPid: options.env?.WATCHDOG_PID,
    pid: process.pid,
    progress: () => {
      const f = guard.counters.frames;
      return { finished: f.scored + f.unknown + f.droppedOverload, inFlight: guard.pending };
    },
    logger: logger.child({ component: 'systemd' }),
  });
  const camera = options.camera;
  try {
    await outputs.start();
    sup.start();
    await camera.start(guard);
  } catch (err) {
    await camera.close().catch(() => undefined);
    guard.close();
    await sup.close();
    await outputs.close().catch(() => undefined);
    notifier.close();
    throw err;
  }
  logger.info(
    { camera: camera.description, verdictBudgetMs: budgetMs, arch: process.arch },
    'line guard started',
  );
  await notifier.ready(`line guard answering frames (${config.deviceId})`);
  let closing: Promise<void> | undefined;
  return {
    guard,
    supervisor: sup,
    logger,
    shutdownLimitMs: SHUTDOWN_LIMIT_MS,
    get httpUrl() {
      return outputs.httpUrl;
    },
    close: () =>
      (closing ??= (async () => {
        void notifier.stopping();
        const errors: unknown[] = [];
        for (const step of [
          () => camera.close(),
          // Each pending frame is answered within the budget, by the worker or by the guard.
          () => guard.drain(),
          async () => guard.close(),
          () => sup.close(),
          () => outputs.close(),
        ]) {
          try {
            await step();
          } catch (err) {
            errors.push(err);
          }
        }
        notifier.close();
        logger.info(
          { frames: { ...guard.counters.frames }, guard: status().guard },
          'line guard stopped',
        );
        if (errors.length > 0) throw new AggregateError(errors, 'line guard close failed');
      })()),
    pending: () => ({ pendingFrames: guard.pending, workerPid: guard.workerPid }),
  };
}
