import { constants } from 'node:os';

/** The two log calls a shutdown makes (a pino logger fits; the demo prints lines instead). */
export interface ShutdownLogger {
  info(details: Record<string, unknown>, message: string): void;
  error(details: Record<string, unknown>, message: string): void;
}

/** What to close when the process is asked to stop, and how long that may take. */
export interface ShutdownOptions {
  logger: ShutdownLogger;
  /** Ordered close of everything the command started; the process exits when it settles. */
  close: (signal: NodeJS.Signals) => Promise<void>;
  /** Past this the process exits with 1 without waiting further. */
  limitMs: number;
  /** Extra details for the log line when the limit runs out (e.g. runs still in native code). */
  pending?: () => Record<string, unknown>;
  /** Exit code after a clean close (default 0; a soak cut short exits 128 + the signal number). */
  exitCode?: (signal: NodeJS.Signals) => number;
  /** Default SIGINT and SIGTERM. */
  signals?: readonly NodeJS.Signals[];
  /** Default process.exit; tests pass their own. */
  exit?: (code: number) => void;
}

/**
 * Installs the process's SIGINT/SIGTERM handling: the first signal starts the
 * ordered close with a bounded wait (exit 0 when it finishes, 1 when it fails
 * or runs past `limitMs`); a second signal exits at once with 128 + its number,
 * as an unhandled signal would. Returns a function that removes the handlers.
 */
export function installShutdown(options: ShutdownOptions): () => void {
  const { logger, limitMs } = options;
  const exit = options.exit ?? ((code: number) => process.exit(code));
  const signals = options.signals ?? (['SIGINT', 'SIGTERM'] as const);
  let started: { signal: NodeJS.Signals; atMs: number } | undefined;
  const onSignal = (signal: NodeJS.Signals) => {
    if (started !== undefined) {
      logger.error(
        { signal, firstSignal: started.signal, elapsedMs: Date.now() - started.atMs },
        'second signal during shutdown; exiting now',
      );
      exit(signalExitCode(signal));
      return;
    }
    started = { signal, atMs: Date.now() };
    logger.info({ signal, limitMs }, 'shutting down');
    const force = setTimeout(() => {
      logger.error(
        { signal, limitMs, ...options.pending?.() },
        'shutdown did not finish in time; exiting anyway',
      );
      exit(1);
    }, limitMs);
    force.unref();
    let closing: Promise<void>;
    try {
      closing = options.close(signal);
    } catch (err) {
      closing = Promise.reject(err);
    }
    closing.then(
      () => {
        clearTimeout(force);
        const code = options.exitCode?.(signal) ?? 0;
        logger.info(
          { signal, elapsedMs: Date.now() - (started?.atMs ?? 0), exitCode: code },
          'shut down cleanly',
        );
        exit(code);
      },
      (err: unknown) => {
        clearTimeout(force);
        logger.error({ err, signal }, 'shutdown failed');
        exit(1);
      },
    );
  };
  for (const signal of signals) process.on(signal, onSignal);
  return () => {
    for (const signal of signals) process.off(signal, onSignal);
  };
}

/** 128 + the signal's number, the code a shell reports for a process the signal ended. */
export function signalExitCode(signal: NodeJS.Signals): number {
  return 128 + (constants.signals[signal] ?? 0);
}
