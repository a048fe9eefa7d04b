import { readdirSync } from 'node:fs';
import { getPriority, setPriority } from 'node:os';
import type { FrameResult } from '@linesight/protocol';
import type { Camera, FrameSink } from '../camera/camera.ts';
import type { VerdictSink } from '../outputs/local-outputs.ts';
import { startAgentApp, type AgentApp, type AgentSetup, type RunAgentOptions } from '../main.ts';
import {
  asGuardMessage,
  frameOf,
  type GuardMessage,
  type RecordMessage,
  type WorkerMessage,
} from './guard-protocol.ts';

/** The worker's end of the IPC channel to its guard (`process` in a forked worker). */
export interface GuardChannel {
  send(message: WorkerMessage): void;
  onMessage(listener: (message: GuardMessage) => void): () => void;
}

/** How often the worker sends its status to the guard. */
const STATUS_INTERVAL_MS = 500;

/** The guard's channel of this process (forked with an IPC channel). */
export function processChannel(): GuardChannel {
  const send = process.send?.bind(process);
  if (send === undefined)
    throw new Error('a guard worker needs an IPC channel to its guard (it is forked by one)');
  return {
    send: (message) => {
      if (process.connected) send(message);
    },
    onMessage: (listener) => {
      const onMessage = (value: unknown) => {
        const message = asGuardMessage(value);
        if (message !== undefined) listener(message);
      };
      process.on('message', onMessage);
      return () => process.off('message', onMessage);
    },
  };
}

/**
 * Gives every thread of this process the main thread's scheduling priority; returns how
 * many it changed. On Linux a priority is per thread: the guard lowers its worker's main
 * thread right after the fork, and the threads Node had started by then keep the old one
 * (those started later inherit it). Elsewhere (no /proc) it does nothing.
 */
export function alignThreadPriorities(): number {
  let tids: string[];
  try {
    tids = readdirSync('/proc/self/task');
  } catch {
    return 0;
  }
  const priority = getPriority();
  let changed = 0;
  for (const tid of tids.map(Number)) {
    if (tid === process.pid) continue;
    try {
      if (getPriority(tid) === priority) continue;
      setPriority(tid, priority);
      changed++;
    } catch {
      // The thread ended meanwhile, or may not be raised (it runs nicer already): left as is.
    }
  }
  return changed;
}

/** A camera whose frames come from the line guard over the channel. */
export class GuardBridgeCamera implements Camera {
  readonly description = 'frames from the line guard';
  readonly #channel: GuardChannel;
  readonly #onRecord: (message: RecordMessage) => void;
  #framesDelivered = 0;
  #stop: (() => void) | undefined;

  constructor(channel: GuardChannel, onRecord: (message: RecordMessage) => void) {
    this.#channel = channel;
    this.#onRecord = onRecord;
  }

  get framesDelivered(): number {
    return this.#framesDelivered;
  }

  async start(sink: FrameSink): Promise<void> {
    this.#stop ??= this.#channel.onMessage((message) => {
      if (message.type === 'record') this.#onRecord(message);
      else {
        this.#framesDelivered++;
        sink.frame(frameOf(message));
      }
    });
  }

  async close(): Promise<void> {
    this.#stop?.();
  }
}

/** Verdicts sent back to the line guard, which owns the line's outputs. */
export class GuardBridgeOutputs implements VerdictSink {
  readonly httpUrl = undefined;
  readonly #channel: GuardChannel;

  constructor(channel: GuardChannel) {
    this.#channel = channel;
  }

  async start(): Promise<void> {}

  publish(result: FrameResult): void {
    try {
      this.#channel.send({ type: 'result', result });
    } catch {
      // The guard is gone: it answered this frame itself; the disconnect stops this process.
    }
  }

  telemetry(): undefined {
    return undefined;
  }

  async close(): Promise<void> {}
}

/**
 * Runs the full agent as a line guard's worker: frames from the guard, each
 * verdict back to it, the guard's unknowns written to the verdict log; its
 * status sent every {@link STATUS_INTERVAL_MS}. Tells the guard `ready` once
 * it takes frames.
 */
export async function runGuardWorker(
  setup: AgentSetup,
  options: RunAgentOptions,
  channel: GuardChannel = processChannel(),
): Promise<AgentApp> {
  const holder: { app?: AgentApp } = {};
  const early: RecordMessage[] = [];
  const record = (message: RecordMessage) => {
    const app = holder.app;
    if (app === undefined) {
      early.push(message);
      return;
    }
    const done = app.agent.recordLineVerdicts(message.entries);
    channel.send({
      type: 'recorded',
      count: done.recorded,
      skipped: done.skipped,
      unrecorded: done.stored ? [] : message.entries,
    });
  };
  const camera = new GuardBridgeCamera(channel, record);
  // The guard owns the line's outputs, the HTTP endpoint and systemd's notifications.
  const rest: RunAgentOptions = { ...options };
  delete rest.env;
  const started = await startAgentApp(setup, {
    ...rest,
    camera,
    deps: { ...options.deps, outputs: new GuardBridgeOutputs(channel) },
  });
  holder.app = started;
  const sendStatus = () => channel.send({ type: 'status', status: started.agent.status() });
  const timer = setInterval(sendStatus, STATUS_INTERVAL_MS);
  timer.unref();
  sendStatus();
  channel.send({ type: 'ready', pid: process.pid });
  for (const message of early.splice(0)) record(message);
  const close = started.close;
  let closing: Promise<void> | undefined;
  return {
    ...started,
    agent: started.agent,
    close: () =>
      (closing ??= (async () => {
        clearInterval(timer);
        await close();
      })()),
  };
}
