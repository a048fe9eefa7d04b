import type { Logger } from 'pino';
import { describeError } from '@linesight/protocol';
import { openNotifyTransport, type NotifyTransport } from './notify-transport.ts';

/** How far the frame loop got: frames finished (scored, unknown or dropped) and frames in it now. */
export interface FrameLoopProgress {
  finished: number;
  inFlight: number;
}

/** What the notifier is told; the app entry reads these from the environment. */
export interface SystemdNotifierOptions {
  /** `NOTIFY_SOCKET`; undefined when not run by systemd (the notifier then does nothing). */
  socketPath: string | undefined;
  /** `WATCHDOG_USEC`: the unit's WatchdogSec in microseconds; undefined = no watchdog. */
  watchdogUsec?: string | undefined;
  /** `WATCHDOG_PID`: when set, the watchdog is for that process only. */
  watchdogPid?: string | undefined;
  /** This process's id. */
  pid: number;
  /** The frame loop's progress, read at every watchdog tick. */
  progress: () => FrameLoopProgress;
  logger: Logger;
  /** How messages are sent (default: {@link openNotifyTransport}). */
  transport?: NotifyTransport;
}

/**
 * The agent's side of systemd's notification protocol (sd_notify): `READY=1`
 * once started, `WATCHDOG=1` every half of the unit's `WatchdogSec` while the
 * frame loop is healthy, `STOPPING=1` when shutting down. A stalled frame loop
 * (frames waiting and none finished for half the watchdog interval) or a blocked
 * event loop sends no ping, so systemd restarts the agent after `WatchdogSec`.
 */
export class SystemdNotifier {
  readonly #o: SystemdNotifierOptions;
  readonly #transport: NotifyTransport | undefined;
  /** Ping period: half the watchdog interval; undefined = no watchdog. */
  readonly #pingMs: number | undefined;
  #timer: NodeJS.Timeout | undefined;
  #lastFinished = -1;
  #lastProgressMs = 0;
  #stalled = false;
  #closed = false;
  /** Pings sent. */
  pings = 0;
  /** Pings withheld because the frame loop was stalled. */
  withheld = 0;
  /** Messages that could not be sent. */
  failures = 0;

  constructor(options: SystemdNotifierOptions) {
    this.#o = options;
    const { socketPath } = options;
    this.#transport =
      socketPath === undefined || socketPath === ''
        ? undefined
        : (options.transport ?? openNotifyTransport(socketPath, options.pid));
    const usec = Number(options.watchdogUsec);
    const forUs =
      options.watchdogPid === undefined ||
      options.watchdogPid === '' ||
      Number(options.watchdogPid) === options.pid;
    this.#pingMs =
      this.#transport !== undefined && forUs && Number.isFinite(usec) && usec > 0
        ? Math.max(1, Math.floor(usec / 2000))
        : undefined;
  }

  /** Whether systemd is listening (NOTIFY_SOCKET was set). */
  get enabled(): boolean {
    return this.#transport !== undefined;
  }

  /** The watchdog ping period, or undefined without a watchdog. */
  get pingIntervalMs(): number | undefined {
    return this.#pingMs;
  }

  /** How messages go out, when enabled. */
  get transportKind(): NotifyTransport['kind'] | undefined {
    return this.#transport?.kind;
  }

  /** Tells systemd the agent is up (`READY=1`) and starts the watchdog pings. */
  async ready(status: string): Promise<void> {
    if (this.#transport === undefined || this.#closed) return;
    await this.#send(`READY=1\nSTATUS=${oneLine(status)}`);
    this.#o.logger.info(
      { transport: this.#transport.kind, watchdogPingMs: this.#pingMs ?? null },
      'notified systemd: ready',
    );
    if (this.#pingMs !== undefined && this.#timer === undefined) {
      this.#lastProgressMs = Date.now();
      this.#timer = setInterval(() => void this.#tick(), this.#pingMs);
    }
  }

  /** Tells systemd the agent is shutting down (`STOPPING=1`); no pings after it. */
  async stopping(): Promise<void> {
    if (this.#transport === undefined || this.#closed) return;
    clearInterval(this.#timer);
    this.#timer = undefined;
    await this.#send('STOPPING=1\nSTATUS=shutting down');
  }

  /** Stops the pings and releases the socket. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#timer);
    this.#timer = undefined;
    this.#transport?.close();
  }

  async #tick(): Promise<void> {
    const now = Date.now();
    const { finished, inFlight } = this.#o.progress();
    if (finished !== this.#lastFinished || inFlight === 0) {
      this.#lastFinished = finished;
      this.#lastProgressMs = now;
    }
    const stalledMs = now - this.#lastProgressMs;
    // Half the watchdog interval without a finished frame while frames wait: the next
    // missed ping lets systemd restart the agent.
    if (stalledMs >= (this.#pingMs ?? 0)) {
      this.withheld++;
      if (!this.#stalled)
        this.#o.logger.warn(
          { stalledMs, inFlight, finished },
          'frame loop stalled: withholding the systemd watchdog ping, so systemd restarts the agent if it stays stalled',
        );
      this.#stalled = true;
      return;
    }
    if (this.#stalled) this.#o.logger.info({ finished }, 'frame loop moving again');
    this.#stalled = false;
    await this.#send('WATCHDOG=1');
    this.pings++;
  }

  async #send(state: string): Promise<void> {
    try {
      await this.#transport?.send(state);
    } catch (err) {
      this.failures++;
      // Once per kind of trouble is enough in the log; the counter keeps the rest.
      if (this.failures === 1 || this.failures % 100 === 0)
        this.#o.logger.warn(
          { err: describeError(err), failures: this.failures },
          'systemd notification failed',
        );
    }
  }
}

function oneLine(text: string): string {
  return text.replace(/\s*\n\s*/g, ' ');
}
