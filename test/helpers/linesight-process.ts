import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

/** The repository root. */
export const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));
const BIN = fileURLToPath(new URL('../../packages/cli/bin/linesight.js', import.meta.url));

/** One structured (pino) log line. */
export type LogLine = Record<string, unknown> & { msg?: string; level?: number };

/** A `linesight` child process whose JSON log lines can be awaited. */
export class LinesightProcess {
  readonly child: ChildProcess;
  readonly lines: LogLine[] = [];
  readonly text: string[] = [];
  readonly #waiters: { match: (l: LogLine) => boolean; resolve: (l: LogLine) => void }[] = [];
  readonly exited: Promise<number | null>;

  /**
   * `options.bin` runs another build of the command (a release), `options.cwd` elsewhere;
   * `options.node` is the command line that runs Node instead of this one (an arm64 Node under
   * qemu: the program and its arguments, the script follows).
   */
  constructor(
    args: string[],
    env: NodeJS.ProcessEnv = {},
    options: { bin?: string; cwd?: string; node?: string[] } = {},
  ) {
    const [node, ...nodeArgs] = options.node ?? [process.execPath];
    const childEnv = { ...process.env, ...env };
    // The test workers' larger worker pool (vitest.config.ts) is theirs: a command runs with
    // Node's default, as it would for a user, unless the test sets one.
    if (process.env.LINESIGHT_TEST_WORKER_POOL === '1') {
      delete childEnv.LINESIGHT_TEST_WORKER_POOL;
      if (env.UV_THREADPOOL_SIZE === undefined) delete childEnv.UV_THREADPOOL_SIZE;
    }
    this.child = spawn(node!, [...nodeArgs, options.bin ?? BIN, ...args], {
      cwd: options.cwd ?? REPO_ROOT,
      env: childEnv,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const onLine = (line: string) => {
      this.text.push(line);
      if (this.text.length > 5000) this.text.shift();
      let parsed: LogLine;
      try {
        parsed = JSON.parse(line) as LogLine;
      } catch {
        return;
      }
      this.lines.push(parsed);
      if (this.lines.length > 5000) this.lines.shift();
      for (const w of [...this.#waiters]) {
        if (w.match(parsed)) {
          this.#waiters.splice(this.#waiters.indexOf(w), 1);
          w.resolve(parsed);
        }
      }
    };
    createInterface({ input: this.child.stdout! }).on('line', onLine);
    createInterface({ input: this.child.stderr! }).on('line', onLine);
    this.exited = new Promise((resolve) => this.child.once('exit', (code) => resolve(code)));
  }

  /** Resolves with the first log line (past or future) that matches, or rejects after `timeoutMs`. */
  waitForLog(match: (l: LogLine) => boolean, timeoutMs = 60_000): Promise<LogLine> {
    const seen = this.lines.find(match);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () =>
          reject(
            new Error(
              `no matching log line within ${timeoutMs} ms; last output:\n${this.text.slice(-15).join('\n')}`,
            ),
          ),
        timeoutMs,
      );
      this.#waiters.push({
        match,
        resolve: (l) => {
          clearTimeout(timer);
          resolve(l);
        },
      });
      void this.exited.then((code) => {
        clearTimeout(timer);
        reject(
          new Error(
            `process exited (${code}) before the log line; last output:\n${this.text.slice(-15).join('\n')}`,
          ),
        );
      });
    });
  }

  #killedAfterMs: number | undefined;

  /**
   * Sends SIGTERM and waits for exit (SIGKILL after `timeoutMs`); resolves with the exit code,
   * null when a signal ended the process ({@link exitReport} says which and why). The default
   * outlasts the shutdown limits of the agent (30 s), the line guard (40 s) and the cloud (10 s),
   * so a slow stop on a busy machine ends by that limit, which logs what it still waited for,
   * rather than by a SIGKILL from the test (a simulated fleet's 60 s and a soak's are longer).
   */
  async stop(timeoutMs = 45_000): Promise<number | null> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return this.child.exitCode;
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => {
      this.#killedAfterMs = timeoutMs;
      this.child.kill('SIGKILL');
    }, timeoutMs);
    try {
      return await this.exited;
    } finally {
      clearTimeout(timer);
    }
  }

  /** How the process ended and its last output, for an assertion's message. */
  exitReport(lines = 25): string {
    const how =
      this.#killedAfterMs !== undefined
        ? `killed with SIGKILL: no exit within ${this.#killedAfterMs} ms of SIGTERM`
        : `exit code ${this.child.exitCode}, signal ${this.child.signalCode}`;
    return `${how}; last output:\n${this.text.slice(-lines).join('\n')}`;
  }
}

/** Runs a `linesight` command to completion; rejects with its output when it fails. */
export async function runLinesight(args: string[], env: NodeJS.ProcessEnv = {}): Promise<string[]> {
  const p = new LinesightProcess(args, env);
  const code = await p.exited;
  if (code !== 0)
    throw new Error(`linesight ${args.join(' ')} exited ${code}:\n${p.text.slice(-20).join('\n')}`);
  return p.text;
}

/**
 * Runs `linesight <command> <args...> --cloud <url> --token <token> --json` to completion
 * and returns the JSON it printed (its first line starting with `{`).
 */
export async function linesightJson<T>(
  command: string,
  args: string[],
  cloud: { url: string; token: string },
): Promise<T> {
  const lines = await runLinesight([
    command,
    ...args,
    '--cloud',
    cloud.url,
    '--token',
    cloud.token,
    '--json',
  ]);
  const json = lines.find((l) => l.startsWith('{'));
  if (json === undefined) throw new Error(`no JSON from linesight ${command} ${args.join(' ')}`);
  return JSON.parse(json) as T;
}
