import { fork } from 'node:child_process';
import { setPriority } from 'node:os';
import { fileURLToPath } from 'node:url';
import { LinesightError } from '@linesight/protocol';
import { TRAINER_NICE } from './retrain-settings.ts';
import type { ChildMessage } from './train-protocol.ts';
import type { JobProgress } from './retrain-store.ts';

/** What the trainer process reports when it succeeds. */
export type TrainOutcome = Extract<ChildMessage, { type: 'done' }>;

/** Options of one trainer run. */
export interface TrainProcessOptions {
  /** Stops the process; the run rejects with ERR_TRAINING saying it was cancelled. */
  signal?: AbortSignal;
  /** The process is stopped after this long. */
  timeoutMs: number;
  onProgress?: (progress: JobProgress) => void;
  /** The entry to fork (tests swap it); the trainer's by default. */
  entry?: string;
  /** Milliseconds between SIGTERM and SIGKILL when stopping; 5000 unless given. */
  killGraceMs?: number;
  /** CPU priority of the trainer (nice, 0-19; the `retrain.training.nice` setting); TRAINER_NICE unless given. */
  nice?: number;
}

const ENTRY = fileURLToPath(new URL('./train-child.js', import.meta.url));
const STDERR_TAIL_BYTES = 4096;

/**
 * Runs the trainer in a child process on a spec file, so that training (CPU
 * for minutes) never blocks the cloud's event loop and a cancelled or timed
 * out job can be stopped at once. Resolves with the child's result; rejects
 * with ERR_TRAINING (with the child's message or its stderr) otherwise.
 */
export function runTrainProcess(
  specPath: string,
  options: TrainProcessOptions,
): Promise<TrainOutcome> {
  return new Promise<TrainOutcome>((resolve, reject) => {
    // A clean Node: the entry registers tsx itself; the parent's flags (a test runner's) stay out.
    const child = fork(options.entry ?? ENTRY, [specPath], {
      execArgv: [],
      stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
      serialization: 'json',
    });
    // Set on the child's main thread while it boots, before the trainer starts its worker
    // threads (on Linux a thread inherits the priority of the thread that starts it).
    try {
      if (child.pid !== undefined) setPriority(child.pid, options.nice ?? TRAINER_NICE);
    } catch {
      // Not permitted or not supported here: the trainer runs at normal priority.
    }
    let stderr = '';
    let outcome: TrainOutcome | undefined;
    let failure: { code: string; message: string } | undefined;
    let stopped: string | undefined;
    let killTimer: NodeJS.Timeout | undefined;
    child.stderr?.setEncoding('utf8');
    child.stderr?.on('data', (chunk: string) => {
      stderr = (stderr + chunk).slice(-STDERR_TAIL_BYTES);
    });
    const stop = (why: string) => {
      if (stopped !== undefined || child.exitCode !== null) return;
      stopped = why;
      child.kill('SIGTERM');
      killTimer = setTimeout(() => child.kill('SIGKILL'), options.killGraceMs ?? 5000);
      killTimer.unref();
    };
    const timeout = setTimeout(
      () => stop(`training took longer than ${Math.round(options.timeoutMs / 1000)} s`),
      options.timeoutMs,
    );
    const onAbort = () => stop('the job was cancelled');
    if (options.signal?.aborted === true) onAbort();
    else options.signal?.addEventListener('abort', onAbort, { once: true });
    child.on('message', (message: ChildMessage) => {
      if (message.type === 'progress') {
        const p = message.progress;
        options.onProgress?.({
          step: p.step,
          done: p.done,
          total: p.total,
          ...('epoch' in p && p.epoch !== undefined ? { epoch: p.epoch } : {}),
          ...('epochs' in p && p.epochs !== undefined ? { epochs: p.epochs } : {}),
          ...('loss' in p && p.loss !== undefined ? { loss: p.loss } : {}),
        });
      } else if (message.type === 'done') outcome = message;
      else failure = { code: message.code, message: message.message };
    });
    child.on('error', (err) => {
      failure ??= { code: 'ERR_TRAINING', message: `the trainer process failed: ${err.message}` };
    });
    child.on('close', (code, signal) => {
      clearTimeout(timeout);
      clearTimeout(killTimer);
      options.signal?.removeEventListener('abort', onAbort);
      if (stopped !== undefined) {
        reject(new LinesightError('ERR_TRAINING', stopped, { details: { stopped: true } }));
      } else if (outcome !== undefined && code === 0) {
        resolve(outcome);
      } else if (failure !== undefined) {
        reject(
          new LinesightError('ERR_TRAINING', failure.message, {
            details: { childCode: failure.code },
          }),
        );
      } else {
        const tail = stderr.trim().split('\n').slice(-5).join('\n');
        reject(
          new LinesightError(
            'ERR_TRAINING',
            `the trainer process exited (${signal ?? `code ${String(code)}`}) without a result${tail === '' ? '' : `: ${tail}`}`,
          ),
        );
      }
    });
  });
}
