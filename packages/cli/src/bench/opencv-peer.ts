import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { withDeadline, type InputSpec } from '@linesight/protocol';

const SCRIPT = fileURLToPath(new URL('../../../../scripts/opencv-peer.py', import.meta.url));
/** Pythons tried in order: the one on PATH, then Debian's, which python3-opencv installs into. */
const PYTHONS = ['python3', '/usr/bin/python3'];
const START_TIMEOUT_MS = 20_000;
const ANSWER_TIMEOUT_MS = 10_000;

/** One frame preprocessed by the peer, timed by the peer itself (its IPC excluded). */
export interface PeerAnswer {
  ms: number;
  decodeMs: number;
  /** libjpeg's decode-time scale denominator the peer used (1 = full decode). */
  reduce: number;
  width: number;
  height: number;
  mean: number;
}

/** What the peer said about itself when it started. */
export interface PeerInfo {
  opencv: string;
  python: string;
  pythonPath: string;
}

/**
 * `scripts/opencv-peer.py` in a child process: decodes, resizes and normalizes
 * the frames it is sent with OpenCV, one at a time, and says how long it took.
 */
export class OpenCvPeer {
  readonly info: PeerInfo;
  readonly #child: ChildProcessWithoutNullStreams;
  readonly #lines: AsyncIterator<string>;
  #closed = false;

  /** Use `OpenCvPeer.start`. */
  constructor(info: PeerInfo, child: ChildProcessWithoutNullStreams, lines: AsyncIterator<string>) {
    this.info = info;
    this.#child = child;
    this.#lines = lines;
  }

  /**
   * Starts the peer for `spec` (grey specs only); resolves `{ skipped }` with
   * the reason when no Python with cv2 is found.
   */
  static async start(
    spec: InputSpec,
    pythons: readonly string[] = PYTHONS,
  ): Promise<OpenCvPeer | { skipped: string }> {
    if (spec.channels !== 1)
      return { skipped: 'the OpenCV peer handles grey (1-channel) models only' };
    const reasons: string[] = [];
    for (const python of pythons) {
      const started = await startOne(python, spec);
      if (started instanceof OpenCvPeer) return started;
      reasons.push(`${python}: ${started}`);
    }
    return {
      skipped: `no Python with OpenCV (install Debian's python3-opencv: apt-get install -y python3-opencv); ${reasons.join('; ')}`,
    };
  }

  /** Has the peer preprocess one encoded frame. */
  async preprocess(image: Uint8Array): Promise<PeerAnswer> {
    const header = Buffer.alloc(4);
    header.writeUInt32LE(image.byteLength);
    this.#child.stdin.write(header);
    this.#child.stdin.write(image);
    const line = await withDeadline(
      this.#lines.next(),
      ANSWER_TIMEOUT_MS,
      'the OpenCV peer did not answer',
    );
    if (line.done === true) throw new Error('the OpenCV peer exited');
    return JSON.parse(line.value) as PeerAnswer;
  }

  /** Ends the peer; idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const exited = new Promise<void>((resolve) => {
      if (this.#child.exitCode !== null || this.#child.signalCode !== null) resolve();
      else this.#child.once('exit', () => resolve());
    });
    this.#child.stdin.end(Buffer.alloc(4));
    const timer = setTimeout(() => this.#child.kill('SIGKILL'), 5_000);
    await exited;
    clearTimeout(timer);
  }
}

async function startOne(python: string, spec: InputSpec): Promise<OpenCvPeer | string> {
  const child = spawn(
    python,
    [
      SCRIPT,
      `--width=${spec.width}`,
      `--height=${spec.height}`,
      `--scale=${spec.scale}`,
      `--mean=${spec.mean[0] ?? 0}`,
      `--std=${spec.std[0] ?? 1}`,
    ],
    { stdio: ['pipe', 'pipe', 'pipe'] },
  );
  let stderr = '';
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (chunk: string) => (stderr = (stderr + chunk).slice(-2000)));
  const spawnError = new Promise<string>((resolve) =>
    child.once('error', (err) => resolve(err.message)),
  );
  const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  const first = await Promise.race([
    withDeadline(lines.next(), START_TIMEOUT_MS, 'the OpenCV peer did not start').then(
      (r) => r,
      (err: unknown) => (err as Error).message,
    ),
    spawnError,
  ]);
  if (typeof first === 'string' || first.done === true) {
    child.kill('SIGKILL');
    return typeof first === 'string' ? first : stderr.trim() || 'exited before it was ready';
  }
  const hello = JSON.parse(first.value) as { opencv: string; python: string };
  return new OpenCvPeer(
    { opencv: hello.opencv, python: hello.python, pythonPath: python },
    child,
    lines,
  );
}
