import { spawn, type ChildProcess } from 'node:child_process';
import { Backoff, LinesightError, backoffProblems, type BackoffOptions } from '@linesight/protocol';
import type { Camera, FrameSink } from './camera.ts';
import { FrameRateCap } from './frame-rate-cap.ts';
import { LineTail } from './line-tail.ts';
import {
  DEFAULT_MAX_MJPEG_FRAME_BYTES,
  MjpegParser,
  type MjpegDrop,
  type MjpegParserStats,
} from './mjpeg-parser.ts';
import { redactCredentials } from './redact-credentials.ts';
import { deliverToSink, reportToSink } from './sink-guard.ts';

/** Options of an MJPEG exec camera; only `command` is required. */
export interface MjpegExecCameraOptions {
  /** Shell command whose stdout is an MJPEG stream, e.g. `rpicam-vid -t 0 --codec mjpeg -o -`. */
  command: string;
  /** Frame-rate cap: frames arriving faster are dropped and counted (default: no cap). */
  fps?: number;
  /** Largest frame kept (default 16 MiB); larger ones are dropped and reported. */
  maxFrameBytes?: number;
  /** Restart delays after the command exits (default 0.5 s doubling to 30 s, with jitter). */
  backoff?: BackoffOptions;
  /** A run that delivered frames for this long resets the backoff when it ends (default 10 000). */
  healthyAfterMs?: number;
  /** Restart the command when it sends no frame for this long; 0 disables (default 15 000). */
  stallTimeoutMs?: number;
  /** Time between SIGTERM and SIGKILL when stopping the command (default 2 000). */
  killGraceMs?: number;
  /** Shell that runs `command` with `-c` (default /bin/sh). */
  shell?: string;
  /** Lines of the command's stderr kept for error reports (default 20). */
  stderrLines?: number;
  /** Minimum time between two reports of dropped frames (default 10 000). */
  dropReportIntervalMs?: number;
  /**
   * A part's `X-Timestamp` header (multipart streams, as mjpg-streamer sends them) is the
   * frame's capture time when it is at most this old on arrival and not in the future
   * (beyond a 1 s clock difference); otherwise the arrival time is, and the frame is
   * counted in `framesTimestampIgnored` (a camera clock that is not wall-clock time, such
   * as a monotonic one, ends up there). Default 10 000; 0 ignores the header always.
   */
  maxTimestampAgeMs?: number;
}

/** Counters of an MJPEG exec camera. */
export interface MjpegExecCameraStats {
  framesDelivered: number;
  /** Frames refused by the `fps` cap. */
  framesDroppedRateCap: number;
  framesDroppedOversize: number;
  framesDroppedTruncated: number;
  framesDroppedCorrupt: number;
  /** Frames whose `X-Timestamp` was not used (too old, in the future, or ignored by option). */
  framesTimestampIgnored: number;
  /** Times the command was started again after it ended. */
  restarts: number;
  /** Process id of the running command, if any. */
  pid: number | undefined;
}

interface Run {
  readonly child: ChildProcess;
  readonly startedAtMs: number;
  readonly stderr: LineTail;
  /** Resolves once the run has ended (exit and stdio closed, or failed to spawn). */
  readonly ended: Promise<void>;
  markEnded: () => void;
  spawned: boolean;
  done: boolean;
  frames: number;
  lastFrameAtMs: number;
  stalled: boolean;
  stallTimer: NodeJS.Timeout | undefined;
}

interface RunOutcome {
  code: number | null;
  signal: NodeJS.Signals | null;
  spawnError?: Error;
}

function resolveOptions(o: MjpegExecCameraOptions): Required<Omit<MjpegExecCameraOptions, 'fps'>> {
  const resolved = {
    command: o.command,
    maxFrameBytes: o.maxFrameBytes ?? DEFAULT_MAX_MJPEG_FRAME_BYTES,
    backoff: o.backoff ?? {},
    healthyAfterMs: o.healthyAfterMs ?? 10_000,
    stallTimeoutMs: o.stallTimeoutMs ?? 15_000,
    killGraceMs: o.killGraceMs ?? 2_000,
    shell: o.shell ?? '/bin/sh',
    stderrLines: o.stderrLines ?? 20,
    dropReportIntervalMs: o.dropReportIntervalMs ?? 10_000,
    maxTimestampAgeMs: o.maxTimestampAgeMs ?? 10_000,
  };
  const problems: string[] = [];
  if (typeof o.command !== 'string' || o.command.trim() === '') {
    problems.push('command must not be empty');
  }
  if (o.fps !== undefined && !(Number.isFinite(o.fps) && o.fps > 0)) {
    problems.push('fps must be > 0');
  }
  if (!(Number.isSafeInteger(resolved.maxFrameBytes) && resolved.maxFrameBytes >= 1024)) {
    problems.push('maxFrameBytes must be an integer >= 1024');
  }
  for (const key of [
    'healthyAfterMs',
    'stallTimeoutMs',
    'killGraceMs',
    'maxTimestampAgeMs',
  ] as const) {
    if (!(Number.isFinite(resolved[key]) && resolved[key] >= 0))
      problems.push(`${key} must be >= 0`);
  }
  if (!(Number.isInteger(resolved.stderrLines) && resolved.stderrLines >= 0)) {
    problems.push('stderrLines must be a non-negative integer');
  }
  problems.push(...backoffProblems(resolved.backoff));
  if (problems.length > 0) {
    throw new LinesightError(
      'ERR_CAMERA',
      `invalid mjpeg-exec camera options: ${problems.join('; ')}`,
      { details: { problems } },
    );
  }
  return resolved;
}

/**
 * A camera that runs a shell command and reads an MJPEG stream from its
 * stdout, so `ffmpeg ... -f mjpeg -` (USB, RTSP) and
 * `rpicam-vid --codec mjpeg -o -` work unchanged.
 *
 * When the command exits, fails to start or stalls, the camera reports
 * ERR_CAMERA to the sink (exit code or signal and the last stderr lines) and
 * starts it again after a capped exponential backoff with jitter; seq numbers
 * continue across restarts. The command runs in its own process group, and
 * `close()` stops the whole group (SIGTERM, then SIGKILL after a grace period).
 */
export class MjpegExecCamera implements Camera {
  readonly description: string;
  readonly #o: Required<Omit<MjpegExecCameraOptions, 'fps'>>;
  readonly #command: string;
  readonly #parser: MjpegParser;
  readonly #cap: FrameRateCap | undefined;
  readonly #backoff: Backoff;
  #sink: FrameSink | undefined;
  #run: Run | undefined;
  #restartTimer: NodeJS.Timeout | undefined;
  #delivered = 0;
  #restarts = 0;
  #closed = false;
  #closing: Promise<void> | undefined;
  #dropsUnreported: MjpegDrop[] = [];
  #lastDropReportMs = Number.NEGATIVE_INFINITY;
  #timestampsIgnored = 0;
  #lastCapturedAtMs = Number.NEGATIVE_INFINITY;

  /** Validates options (throws ERR_CAMERA listing every problem); does not start the command. */
  constructor(options: MjpegExecCameraOptions) {
    this.#o = resolveOptions(options);
    this.#command = redactCredentials(this.#o.command);
    this.#cap = options.fps === undefined ? undefined : new FrameRateCap(options.fps);
    this.#backoff = new Backoff(this.#o.backoff);
    this.#parser = new MjpegParser({
      maxFrameBytes: this.#o.maxFrameBytes,
      onFrame: (jpeg, part) => this.#onFrame(jpeg, part.timestampMs),
      onDrop: (drop) => this.#onDrop(drop),
    });
    const cap = options.fps === undefined ? '' : ` @ <=${options.fps} fps`;
    this.description = `mjpeg-exec(${this.#command})${cap}`;
  }

  /** Number of frames delivered so far (equals the next seq). */
  get framesDelivered(): number {
    return this.#delivered;
  }

  /** Counters: frames delivered and dropped by cause, restarts, current pid. */
  get stats(): MjpegExecCameraStats {
    const parser: MjpegParserStats = this.#parser.stats;
    return {
      framesDelivered: this.#delivered,
      framesDroppedRateCap: this.#cap?.dropped ?? 0,
      framesDroppedOversize: parser.droppedOversize,
      framesDroppedTruncated: parser.droppedTruncated,
      framesDroppedCorrupt: parser.droppedCorrupt,
      framesTimestampIgnored: this.#timestampsIgnored,
      restarts: this.#restarts,
      pid: this.#run?.done === false ? this.#run.child.pid : undefined,
    };
  }

  /**
   * Starts the command; resolves once it has been spawned or has failed to
   * spawn (reported to the sink and retried). Rejects if started before or closed.
   */
  async start(sink: FrameSink): Promise<void> {
    if (this.#closed) throw new LinesightError('ERR_CAMERA', 'mjpeg-exec camera is closed');
    if (this.#sink !== undefined) {
      throw new LinesightError('ERR_CAMERA', 'mjpeg-exec camera is already started');
    }
    this.#sink = sink;
    const run = this.#spawn();
    await new Promise<void>((resolve) => {
      run.child.once('spawn', resolve);
      void run.ended.then(resolve);
    });
  }

  /**
   * Stops the command's process group (SIGTERM, SIGKILL after the grace
   * period) and resolves once the command has exited and what is left of its
   * group has been sent SIGKILL; idempotent. No frame is delivered after it is called.
   */
  close(): Promise<void> {
    this.#closing ??= this.#shutdown();
    return this.#closing;
  }

  async #shutdown(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#restartTimer);
    this.#restartTimer = undefined;
    const run = this.#run;
    if (run !== undefined && !run.done) await this.#terminate(run);
  }

  #spawn(): Run {
    let markEnded = (): void => {};
    const ended = new Promise<void>((resolve) => (markEnded = resolve));
    const child = spawn(this.#o.shell, ['-c', this.#o.command], {
      stdio: ['ignore', 'pipe', 'pipe'],
      // Its own process group, so stopping it also stops whatever it started
      // (a pipeline, or a wrapper script's children).
      detached: true,
    });
    const run: Run = {
      child,
      startedAtMs: performance.now(),
      stderr: new LineTail(this.#o.stderrLines),
      ended,
      markEnded,
      spawned: false,
      done: false,
      frames: 0,
      lastFrameAtMs: performance.now(),
      stalled: false,
      stallTimer: undefined,
    };
    this.#run = run;
    child.once('spawn', () => {
      run.spawned = true;
      run.lastFrameAtMs = performance.now();
      this.#armStallTimer(run, this.#o.stallTimeoutMs);
    });
    child.on('error', (err) => {
      // Before 'spawn': the command could not start. After it, a failed kill,
      // which #terminate handles by escalating.
      if (!run.spawned) this.#onRunEnd(run, { code: null, signal: null, spawnError: err });
    });
    child.stdout?.on('data', (chunk: Buffer) => {
      if (this.#run === run && !this.#closed) this.#parser.push(chunk);
    });
    child.stderr?.setEncoding('utf8');
    child.stderr?.on('data', (text: string) => run.stderr.push(text));
    // Stream errors also end in 'close'; listening keeps them from being unhandled.
    child.stdout?.on('error', () => {});
    child.stderr?.on('error', () => {});
    child.on('close', (code, signal) => this.#onRunEnd(run, { code, signal }));
    return run;
  }

  #armStallTimer(run: Run, delayMs: number): void {
    if (this.#o.stallTimeoutMs === 0 || run.done) return;
    run.stallTimer = setTimeout(() => {
      run.stallTimer = undefined;
      const quietMs = performance.now() - run.lastFrameAtMs;
      if (quietMs < this.#o.stallTimeoutMs) {
        this.#armStallTimer(run, this.#o.stallTimeoutMs - quietMs);
        return;
      }
      // The exit report says why; #onRunEnd then restarts the command.
      run.stalled = true;
      void this.#terminate(run);
    }, delayMs);
  }

  #onFrame(jpeg: Buffer, timestampMs: number | undefined): void {
    const run = this.#run;
    if (this.#closed || run === undefined) return;
    const nowMs = performance.now();
    run.lastFrameAtMs = nowMs;
    const arrivedMs = Date.now();
    const capturedMs = this.#captureTime(timestampMs, arrivedMs);
    // The cap judges capture times: frames taken at the camera's rate that queued in the pipe
    // while this process was busy arrive together, and are not a faster camera.
    if (this.#cap !== undefined && !this.#cap.admit(nowMs - (arrivedMs - capturedMs))) return;
    this.#lastCapturedAtMs = capturedMs;
    run.frames += 1;
    const seq = this.#delivered++;
    deliverToSink(this.#sink, { seq, capturedAt: new Date(capturedMs), image: jpeg });
  }

  // The camera's own capture time when its header gives a plausible one, else the arrival
  // time; never earlier than the previous frame's, so capture times keep frame order.
  #captureTime(timestampMs: number | undefined, arrivedMs: number): number {
    let atMs = arrivedMs;
    if (timestampMs !== undefined) {
      const ageMs = arrivedMs - timestampMs;
      const max = this.#o.maxTimestampAgeMs;
      if (max > 0 && ageMs >= -1000 && ageMs <= max) {
        atMs = Math.min(timestampMs, arrivedMs);
      } else {
        this.#timestampsIgnored += 1;
      }
    }
    return Math.max(atMs, this.#lastCapturedAtMs);
  }

  // Dropped frames are reported at most once per interval, with a count, so
  // a broken stream does not flood the sink with one error per frame.
  #onDrop(drop: MjpegDrop): void {
    if (this.#closed) return;
    this.#dropsUnreported.push(drop);
    if (this.#dropsUnreported.length > 100) this.#dropsUnreported.shift();
    const nowMs = performance.now();
    if (nowMs - this.#lastDropReportMs < this.#o.dropReportIntervalMs) return;
    this.#lastDropReportMs = nowMs;
    const drops = this.#dropsUnreported;
    this.#dropsUnreported = [];
    const last = drops[drops.length - 1] as MjpegDrop;
    reportToSink(
      this.#sink,
      new LinesightError(
        'ERR_CAMERA',
        `mjpeg-exec camera dropped ${drops.length} frame(s) (last: ${last.reason}, ${last.bytes} bytes; max ${this.#o.maxFrameBytes})`,
        { details: { command: this.#command, drops, maxFrameBytes: this.#o.maxFrameBytes } },
      ),
    );
  }

  #onRunEnd(run: Run, outcome: RunOutcome): void {
    if (run.done) return;
    run.done = true;
    clearTimeout(run.stallTimer);
    if (run.spawned) this.#killGroup(run, 'SIGKILL'); // Stragglers of a finished command.
    if (this.#run === run) {
      // A partial last frame is expected when a command dies; it is counted, not reported.
      if (this.#parser.inFrame) this.#parser.end();
    }
    run.markEnded();
    if (this.#closed) return;
    const uptimeMs = performance.now() - run.startedAtMs;
    if (run.frames > 0 && uptimeMs >= this.#o.healthyAfterMs) this.#backoff.reset();
    const restartInMs = this.#backoff.next();
    const stderr = run.stderr.lines().map(redactCredentials);
    let what: string;
    if (outcome.spawnError !== undefined) what = `could not start (${outcome.spawnError.message})`;
    else if (run.stalled) what = `sent no frame for ${this.#o.stallTimeoutMs} ms and was stopped`;
    else if (outcome.signal !== null) what = `was killed by ${outcome.signal}`;
    else what = `exited with code ${outcome.code}`;
    const tail = stderr.length > 0 ? `; stderr: ${stderr.slice(-3).join(' | ')}` : '';
    reportToSink(
      this.#sink,
      new LinesightError(
        'ERR_CAMERA',
        `camera command ${what}; restarting in ${restartInMs} ms${tail}`,
        {
          ...(outcome.spawnError === undefined ? {} : { cause: outcome.spawnError }),
          details: {
            command: this.#command,
            exitCode: outcome.code,
            signal: outcome.signal,
            stalled: run.stalled,
            stderr,
            framesThisRun: run.frames,
            uptimeMs: Math.round(uptimeMs),
            attempt: this.#backoff.attempt,
            restartInMs,
          },
        },
      ),
    );
    this.#restartTimer = setTimeout(() => {
      this.#restartTimer = undefined;
      if (this.#closed) return;
      this.#restarts += 1;
      this.#spawn();
    }, restartInMs);
  }

  // SIGTERM to the group; SIGKILL if it has not ended within the grace period.
  async #terminate(run: Run): Promise<void> {
    if (run.done) return;
    this.#killGroup(run, 'SIGTERM');
    let graceTimer: NodeJS.Timeout | undefined;
    const graceOver = new Promise<boolean>((resolve) => {
      graceTimer = setTimeout(() => resolve(true), this.#o.killGraceMs);
    });
    const timedOut = await Promise.race([run.ended.then(() => false), graceOver]);
    clearTimeout(graceTimer);
    if (timedOut) {
      this.#killGroup(run, 'SIGKILL');
      await run.ended;
    }
  }

  #killGroup(run: Run, signal: NodeJS.Signals): void {
    const pid = run.child.pid;
    if (pid === undefined) return;
    try {
      process.kill(-pid, signal);
    } catch {
      // ESRCH: the group is already gone. Fall back to the child itself in
      // case it could not be made a group leader.
      try {
        run.child.kill(signal);
      } catch {
        // Already exited.
      }
    }
  }
}
