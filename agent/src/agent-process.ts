import { LinesightError } from '@linesight/protocol';
import type pino from 'pino';
import { getPriority } from 'node:os';
import { loadAgentSetup, type RunAgentOptions } from './agent-setup.ts';
import { runLineGuard } from './guard/line-guard.ts';
import type { WorkerLaunch } from './guard/worker-supervisor.ts';

// A line guard needs its config, the camera, the outputs and its worker's supervisor, not the
// agent (models, vision with sharp and onnxruntime, the SQLite store): the agent and the
// guard's worker side are loaded only by the processes that run them, so a guard's cold
// start to its first verdict does not wait for them.

/** Options of `linesight agent`: an agent, a line guard, or a line guard's worker. */
export interface AgentProcessOptions extends RunAgentOptions {
  /**
   * How a line guard forks its worker (the same command with `--guard-worker`);
   * needed when `lineGuard` (option or config file) is on.
   */
  guardWorkerLaunch?: WorkerLaunch;
  /** This process is a line guard's worker: frames and verdicts go over the IPC channel. */
  guardWorker?: boolean;
}

/** What the command needs of what it started, whichever it was. */
export interface AgentProcessApp {
  readonly logger: pino.Logger;
  readonly shutdownLimitMs: number;
  /** The signals the process stops on (a guard's worker leaves SIGINT to its guard). */
  readonly signals: readonly NodeJS.Signals[];
  close(): Promise<void>;
  pending(): Record<string, unknown>;
}

/**
 * Starts what `linesight agent` runs: the agent itself by default; with
 * `lineGuard`, a line guard that owns the camera and the outputs and forks
 * the agent as its worker; with `guardWorker`, that worker. A worker stops
 * when its guard's channel closes (the guard was killed).
 */
export async function runAgentProcess(options: AgentProcessOptions): Promise<AgentProcessApp> {
  const setup = await loadAgentSetup(options);
  if (options.guardWorker === true) {
    const { alignThreadPriorities, processChannel, runGuardWorker } =
      await import('./guard/guard-worker.ts');
    setup.logger.info(
      { priority: getPriority(), threadsAligned: alignThreadPriorities() },
      'guard worker priority',
    );
    const channel = processChannel();
    // A killed guard takes its worker with it: its channel closes. (Before the worker's own
    // signal handling is installed, SIGTERM ends it at once.)
    process.once('disconnect', () => {
      setup.logger.warn('line guard gone (IPC channel closed); stopping');
      process.kill(process.pid, 'SIGTERM');
    });
    // Ctrl-C reaches the whole process group: the guard stops its worker in order.
    process.on('SIGINT', () => undefined);
    const app = await runGuardWorker(setup, options, channel);
    return { ...app, signals: ['SIGTERM'] };
  }
  if (setup.config.lineGuard) {
    if (options.guardWorkerLaunch === undefined)
      throw new LinesightError(
        'ERR_AGENT_CONFIG',
        'lineGuard is on but there is no way to start its worker (run it with `linesight agent`)',
      );
    const app = await runLineGuard(setup, options, options.guardWorkerLaunch);
    return { ...app, signals: ['SIGINT', 'SIGTERM'] };
  }
  const { startAgentApp } = await import('./main.ts');
  const app = await startAgentApp(setup, options);
  return { ...app, signals: ['SIGINT', 'SIGTERM'] };
}
