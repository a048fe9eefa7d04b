import { execFile } from 'node:child_process';
import { createRequire } from 'node:module';
import { LinesightError } from '@linesight/protocol';

/**
 * Sends sd_notify state strings (`READY=1`, `WATCHDOG=1`, ...) to the service
 * manager's notification socket, one datagram each.
 */
export interface NotifyTransport {
  /** How it sends: an AF_UNIX datagram from this process, or the `systemd-notify` command. */
  readonly kind: 'unix-dgram' | 'systemd-notify';
  send(state: string): Promise<void>;
  /** Idempotent. */
  close(): void;
}

/** The part of the `unix-dgram` addon used here (it ships no types). */
interface UnixDgramSocket {
  on(event: 'error', listener: (err: Error) => void): void;
  send(
    buf: Buffer,
    offset: number,
    length: number,
    path: string,
    callback: (err?: Error) => void,
  ): void;
  close(): void;
}
interface UnixDgramModule {
  createSocket(type: 'unix_dgram'): UnixDgramSocket;
}

/**
 * The `unix-dgram` addon, or undefined where it is not installed (an optional
 * dependency: it compiles at install time, which a box without a compiler skips).
 */
export function loadUnixDgram(): UnixDgramModule | undefined {
  try {
    return createRequire(import.meta.url)('unix-dgram') as UnixDgramModule;
  } catch {
    return undefined;
  }
}

/**
 * Node has no AF_UNIX datagram sockets, and the notification socket is one. The
 * `unix-dgram` addon sends the datagram from this process, which is what systemd
 * expects by default (`NotifyAccess=main`). Without the addon, or for an abstract
 * socket name (`@...`, which the addon cannot address), each message goes through
 * the `systemd-notify` command instead: a child process, so the unit needs
 * `NotifyAccess=all`; systemd-notify waits until the manager has read the message,
 * so it is not lost when the child exits first.
 */
export function openNotifyTransport(socketPath: string, mainPid: number): NotifyTransport {
  const dgram = socketPath.startsWith('@') ? undefined : loadUnixDgram();
  return dgram
    ? new UnixDgramTransport(dgram, socketPath)
    : new SystemdNotifyTransport(socketPath, mainPid);
}

/** One datagram per state, sent from this process through the `unix-dgram` addon. */
export class UnixDgramTransport implements NotifyTransport {
  readonly kind = 'unix-dgram';
  readonly #socket: UnixDgramSocket;
  readonly #path: string;
  #closed = false;

  constructor(dgram: UnixDgramModule, socketPath: string) {
    this.#socket = dgram.createSocket('unix_dgram');
    // Send errors come back through each send's callback; this keeps any other from throwing.
    this.#socket.on('error', () => undefined);
    this.#path = socketPath;
  }

  send(state: string): Promise<void> {
    if (this.#closed) return Promise.resolve();
    const buf = Buffer.from(state);
    return new Promise((resolve, reject) => {
      this.#socket.send(buf, 0, buf.length, this.#path, (err) => {
        if (err)
          reject(
            new LinesightError('ERR_AGENT_NOTIFY', `sd_notify to ${this.#path} failed`, {
              cause: err,
            }),
          );
        else resolve();
      });
    });
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#socket.close();
  }
}

/** Longest a `systemd-notify` call may take (it waits for the manager to read the message). */
const SYSTEMD_NOTIFY_TIMEOUT_MS = 5_000;

/** Each state through `systemd-notify --pid=<main pid> STATE`. */
export class SystemdNotifyTransport implements NotifyTransport {
  readonly kind = 'systemd-notify';
  readonly #socketPath: string;
  readonly #mainPid: number;
  readonly #command: string;

  constructor(socketPath: string, mainPid: number, command = 'systemd-notify') {
    this.#socketPath = socketPath;
    this.#mainPid = mainPid;
    this.#command = command;
  }

  send(state: string): Promise<void> {
    const args = [`--pid=${this.#mainPid}`, ...state.split('\n').filter((l) => l !== '')];
    return new Promise((resolve, reject) => {
      execFile(
        this.#command,
        args,
        {
          env: { ...process.env, NOTIFY_SOCKET: this.#socketPath },
          timeout: SYSTEMD_NOTIFY_TIMEOUT_MS,
        },
        (err, _stdout, stderr) => {
          if (err)
            reject(
              new LinesightError(
                'ERR_AGENT_NOTIFY',
                `${this.#command} ${args.join(' ')} failed${stderr ? `: ${stderr.trim()}` : ''}`,
                { cause: err },
              ),
            );
          else resolve();
        },
      );
    });
  }

  close(): void {}
}
