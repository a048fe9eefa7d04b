import { fork, type ChildProcess } from 'node:child_process';
import { constants, getPriority, setPriority } from 'node:os';
import type { Logger } from 'pino';
import { backoffDelayMs, describeError } from '@linesight/protocol';
import type { AgentHttpStatus } from '../http/agent-http-server.ts';
import {
  asWorkerMessage,
  frameMessage,
  type GuardMessage,
  type HandoverEntry,
} from './guard-protocol.ts';
import type { VerdictGuard } from './verdict-guard.ts';
import type { Frame } from '../camera/camera.ts';

/** How the guard starts its worker: a Node module forked with an IPC channel. */
export interface WorkerLaunch {
  modulePath: string;
  args: readonly string[];
  /** Node's own flags for the child (e.g. a TypeScript loader); default this process's. */
  execArgv?: readonly string[];
  env?: NodeJS.ProcessEnv;
}

/** Options of a worker supervisor. */
export interface WorkerSupervisorOptions {
  launch: WorkerLaunch;
  guard: VerdictGuard;
  logger: Logger;
  /** First delay of a restart after a worker that did not run stably; doubles to `maxMs`. */
  backoff?: { initialMs: number; maxMs: number };
  /** A worker that took frames this long is stable: its exit restarts the next one at once. */
  stableAfterMs?: number;
  /** Exits in a row, each before the worker ran stably, that are reported as a crash loop. */
  crashLoopExits?: number;
  /** How long a stopping worker gets after SIGTERM before SIGKILL. */
  stopTimeoutMs?: number;
  /** Hand-over verdicts sent per message. */
  recordBatch?: number;
  /** Starts a child (default `child_process.fork` with advanced serialization). */
  fork?: (launch: WorkerLaunch) => ChildProcess;
  /**
   * The worker runs this much nicer than the guard (0: as the guard). When the CPU is
   * short (a hanging model, a worker starting, other work on the box) the guard's camera
   * and its answers to the line come first; the worker gets the rest.
   */
  workerNiceIncrement?: number;
  /** Sets a process's (its main thread's) scheduling priority (default `os.setPriority`). */
  setPriority?: (pid: number, priority: number) => void;
}

/** What the supervisor tells about its worker. */
export interface WorkerSupervisorStats {
  /** The current worker's pid, once it takes frames. */
  workerPid: number | undefined;
  /** Workers started after the first. */
  restarts: number;
  /** Exits in a row before the worker ran stably. */
  quickExits: number;
  crashLoop: boolean;
  /** Handed-over verdicts workers wrote to their verdict log. */
  recorded: number;
  /** Handed-over verdicts not written: the worker that died had recorded the frame itself. */
  recordSkipped: number;
}

function forkWorker(launch: WorkerLaunch): ChildProcess {
  return fork(launch.modulePath, [...launch.args], {
    execArgv: [...(launch.execArgv ?? process.execArgv)],
    env: launch.env ?? process.env,
    serialization: 'advanced',
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
}

/**
 * Runs the line guard's worker: forks it, relays frames to it and its
 * results to the {@link VerdictGuard}, hands it the guard's unknowns once it
 * is ready, and restarts it when it exits: at once after a worker that ran
 * stably, else with capped exponential backoff (with jitter), reporting a
 * crash loop as an error log line and in its stats. `close()` stops the
 * worker (SIGTERM, then SIGKILL after `stopTimeoutMs`) and restarts no more.
 */
export class WorkerSupervisor {
  readonly #o: Required<Omit<WorkerSupervisorOptions, 'fork'>> & {
    fork: (launch: WorkerLaunch) => ChildProcess;
  };
  #child: ChildProcess | undefined;
  #readyAtMs: number | undefined;
  #restartTimer: NodeJS.Timeout | undefined;
  #closing: Promise<void> | undefined;
  #starts = 0;
  #status: AgentHttpStatus | undefined;
  readonly stats: WorkerSupervisorStats = {
    workerPid: undefined,
    restarts: 0,
    quickExits: 0,
    crashLoop: false,
    recorded: 0,
    recordSkipped: 0,
  };

  constructor(options: WorkerSupervisorOptions) {
    this.#o = {
      backoff: { initialMs: 500, maxMs: 30_000 },
      stableAfterMs: 30_000,
      crashLoopExits: 5,
      stopTimeoutMs: 30_000,
      recordBatch: 500,
      fork: forkWorker,
      workerNiceIncrement: 0,
      setPriority,
      ...options,
    };
  }

  /** The worker's last status, while one is up. */
  get status(): AgentHttpStatus | undefined {
    return this.#child === undefined ? undefined : this.#status;
  }

  /** Starts the first worker. */
  start(): void {
    this.#spawn();
  }

  /** Sends one of the guard's unknowns to the ready worker's verdict log; false without one. */
  recordLive(entry: HandoverEntry): boolean {
    const child = this.#child;
    if (this.#readyAtMs === undefined || child?.connected !== true) return false;
    child.send({ type: 'record', entries: [entry] });
    return true;
  }

  /** Sends a frame to the worker (the guard calls this only while one is up). */
  send(frame: Frame): void {
    this.#post(frameMessage(frame));
  }

  #post(message: GuardMessage): void {
    const child = this.#child;
    if (child?.connected === true) child.send(message);
  }

  #spawn(): void {
    this.#restartTimer = undefined;
    if (this.#closing !== undefined) return;
    const { guard, logger } = this.#o;
    let child: ChildProcess;
    try {
      child = this.#o.fork(this.#o.launch);
    } catch (err) {
      logger.error({ err: describeError(err) }, 'guard worker could not be started');
      this.#exited(undefined, 'could not start');
      return;
    }
    this.#child = child;
    this.#renice(child);
    if (this.#starts++ > 0) this.stats.restarts++;
    this.#readyAtMs = undefined;
    this.#status = undefined;
    const pid = child.pid;
    guard.workerDown(`worker ${pid ?? '?'} starting`);
    logger.info({ workerPid: pid, restarts: this.stats.restarts }, 'guard worker started');
    child.on('message', (value: unknown) => {
      if (child !== this.#child) return;
      const message = asWorkerMessage(value);
      if (message === undefined) return;
      switch (message.type) {
        case 'result':
          guard.workerResult(message.result);
          break;
        case 'status':
          this.#status = message.status;
          break;
        case 'ready':
          this.#ready(child, message.pid);
          break;
        case 'recorded':
          this.stats.recorded += message.count;
          this.stats.recordSkipped += message.skipped;
          if (message.unrecorded.length > 0) guard.giveBack(message.unrecorded);
          logger.info(
            {
              workerPid: pid,
              recorded: message.count,
              skipped: message.skipped,
              kept: message.unrecorded.length,
            },
            'guard unknowns written to the verdict log',
          );
          break;
      }
    });
    child.on('error', (err) =>
      logger.warn({ workerPid: pid, err: describeError(err) }, 'guard worker channel error'),
    );
    child.once('exit', (code, signal) => {
      if (child === this.#child) this.#exited(pid, signal ?? `code ${code}`);
    });
  }

  /**
   * Lowers the new worker's priority at once, before it loads its modules; threads it
   * starts later inherit it (threads it started before, the worker lowers itself).
   */
  #renice(child: ChildProcess): void {
    const increment = this.#o.workerNiceIncrement;
    if (increment <= 0 || child.pid === undefined) return;
    const priority = Math.min(constants.priority.PRIORITY_LOW, getPriority() + increment);
    try {
      this.#o.setPriority(child.pid, priority);
    } catch (err) {
      this.#o.logger.warn(
        { workerPid: child.pid, priority, err: describeError(err) },
        'guard worker priority not lowered; it competes with the guard for the CPU',
      );
    }
  }

  #ready(child: ChildProcess, pid: number): void {
    const { guard, logger } = this.#o;
    this.#readyAtMs = Date.now();
    this.stats.workerPid = pid;
    guard.workerUp(pid);
    logger.info({ workerPid: pid, restarts: this.stats.restarts }, 'guard worker ready');
    const handover = guard.takeHandover();
    for (let i = 0; i < handover.length; i += this.#o.recordBatch) {
      if (child.connected)
        child.send({ type: 'record', entries: handover.slice(i, i + this.#o.recordBatch) });
      else guard.giveBack(handover.slice(i));
    }
  }

  #exited(pid: number | undefined, how: string): void {
    const { guard, logger } = this.#o;
    const ranMs = this.#readyAtMs === undefined ? 0 : Date.now() - this.#readyAtMs;
    this.#child = undefined;
    this.#status = undefined;
    this.stats.workerPid = undefined;
    guard.workerDown(`worker ${pid ?? '?'} exited (${how})`);
    if (this.#closing !== undefined) return;
    if (ranMs >= this.#o.stableAfterMs) this.stats.quickExits = 0;
    else this.stats.quickExits++;
    const quick = this.stats.quickExits;
    const { initialMs, maxMs } = this.#o.backoff;
    // The first exit restarts at once (a kill -9 of a healthy worker); a repeat backs off.
    const delayMs = quick <= 1 ? 0 : backoffDelayMs(quick - 2, initialMs, maxMs, Math.random());
    const details = { workerPid: pid, exit: how, ranMs, quickExits: quick, restartInMs: delayMs };
    if (quick >= this.#o.crashLoopExits) {
      this.stats.crashLoop = true;
      logger.error(details, 'guard worker crash loop: it keeps exiting before it runs stably');
    } else {
      this.stats.crashLoop = false;
      logger.warn(details, 'guard worker exited');
    }
    this.#restartTimer = setTimeout(() => this.#spawn(), delayMs);
  }

  /** Stops the worker and restarts no more; idempotent. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      clearTimeout(this.#restartTimer);
      const child = this.#child;
      if (child === undefined || child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), this.#o.stopTimeoutMs);
      try {
        await exited;
      } finally {
        clearTimeout(timer);
      }
    })();
    return this.#closing;
  }
}
