import type pino from 'pino';
import { WorkerOnnxModel } from '@linesight/vision';
import { Agent } from './agent.ts';
import { loadAgentSetup, type AgentSetup, type RunAgentOptions } from './agent-setup.ts';
import { SystemdNotifier } from './systemd/systemd-notifier.ts';

export { loadAgentSetup, type AgentSetup, type RunAgentOptions } from './agent-setup.ts';

/**
 * How long a signal-initiated shutdown may take before the process exits
 * with 1: flushing the store and closing models, including waiting for runs
 * the watchdog abandoned (a slow model's run can take seconds on a busy box).
 */
const SHUTDOWN_LIMIT_MS = 30_000;

/** A started agent app: the agent, its logger, and the ordered close a shutdown runs. */
export interface AgentApp {
  readonly agent: Agent;
  readonly logger: pino.Logger;
  /** How long the close may take before the process should give up and exit. */
  readonly shutdownLimitMs: number;
  /**
   * Tells systemd it is stopping, closes the agent and the notifier, then waits
   * for runs the watchdog abandoned; memoized.
   */
  close(): Promise<void>;
  /** What the close may still be waiting for, for the log line when it runs out of time. */
  pending(): Record<string, unknown>;
}

/**
 * Builds an agent from its provisioning file plus overrides and starts it; the
 * caller (the CLI) installs the signal handling that runs its close().
 */
export async function runAgent(options: RunAgentOptions): Promise<AgentApp> {
  return startAgentApp(await loadAgentSetup(options), options);
}

/** Starts an agent on a loaded setup (see {@link runAgent}). */
export async function startAgentApp(
  setup: AgentSetup,
  options: RunAgentOptions,
): Promise<AgentApp> {
  const { config, logger } = setup;
  const agent = new Agent(config, options.camera, logger, options.deps);
  const notifier = new SystemdNotifier({
    socketPath: options.env?.NOTIFY_SOCKET,
    watchdogUsec: options.env?.WATCHDOG_USEC,
    watchdogPid: options.env?.WATCHDOG_PID,
    pid: process.pid,
    progress: () => agent.frameLoop,
    logger: logger.child({ component: 'systemd' }),
  });
  try {
    await agent.start();
  } catch (err) {
    notifier.close();
    throw err;
  }
  await notifier.ready(`scoring frames (${options.deviceId})`);
  let closing: Promise<void> | undefined;
  return {
    agent,
    logger,
    shutdownLimitMs: SHUTDOWN_LIMIT_MS,
    close: () =>
      (closing ??= (async () => {
        void notifier.stopping();
        try {
          await agent.close();
        } finally {
          notifier.close();
        }
        // A run the watchdog abandoned keeps its thread in native code; exiting under it
        // can abort the process, so wait for it (bounded by the caller's shutdown limit).
        if (WorkerOnnxModel.abandonedRuns > 0) {
          logger.info(
            { abandonedRuns: WorkerOnnxModel.abandonedRuns },
            'waiting for inference runs the watchdog abandoned to return before exiting',
          );
          await WorkerOnnxModel.waitForAbandonedRuns();
        }
      })()),
    pending: () => ({
      closingStep: agent.closingStep,
      abandonedRuns: WorkerOnnxModel.abandonedRuns,
    }),
  };
}
