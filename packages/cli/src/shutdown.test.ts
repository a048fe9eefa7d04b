import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signalExitCode } from './shutdown.ts';

// A child process that installs the shutdown and holds an open handle (as a server would);
// its close() behaves as MODE says. It prints JSON lines: its logs and its close steps.
const CHILD = `
import { installShutdown } from ${JSON.stringify(new URL('./shutdown.ts', import.meta.url).pathname)};
const mode = process.env.MODE;
const line = (o) => process.stdout.write(JSON.stringify(o) + '\\n');
const server = setInterval(() => {}, 1000);
installShutdown({
  limitMs: Number(process.env.LIMIT_MS),
  logger: {
    info: (d, msg) => line({ level: 'info', msg, ...d }),
    error: (d, msg) => line({ level: 'error', msg, ...d, err: d.err && String(d.err) }),
  },
  pending: () => ({ stillOpen: 'server' }),
  ...(mode === 'soak' ? { exitCode: (s) => (s === 'SIGINT' ? 130 : 143) } : {}),
  close: async (signal) => {
    line({ step: 'close-started', signal });
    if (mode === 'hang') return new Promise(() => {});
    await new Promise((r) => setImmediate(r));
    line({ step: 'children-closed' });
    if (mode === 'fail') throw new Error('broker would not close');
    clearInterval(server);
    line({ step: 'parent-closed' });
  },
});
line({ ready: true });
`;

interface Run {
  child: ChildProcess;
  lines: Record<string, unknown>[];
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  waitFor(pred: (l: Record<string, unknown>) => boolean): Promise<void>;
}

let dir: string;
let script: string;
const children: ChildProcess[] = [];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'linesight-shutdown-'));
  script = join(dir, 'child.mjs');
  await writeFile(script, CHILD);
});

afterAll(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  await rm(dir, { recursive: true, force: true });
});

function start(mode: string, limitMs = 60_000): Run {
  const child = spawn(process.execPath, ['--import', 'tsx', script], {
    env: { ...process.env, MODE: mode, LIMIT_MS: String(limitMs) },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  children.push(child);
  const lines: Record<string, unknown>[] = [];
  const waiters: (() => void)[] = [];
  let buf = '';
  child.stdout?.setEncoding('utf8');
  child.stdout?.on('data', (chunk: string) => {
    buf += chunk;
    let nl;
    while ((nl = buf.indexOf('\n')) >= 0) {
      lines.push(JSON.parse(buf.slice(0, nl)) as Record<string, unknown>);
      buf = buf.slice(nl + 1);
      for (const w of waiters) w();
    }
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  return {
    child,
    lines,
    exited,
    waitFor: (pred) =>
      new Promise<void>((resolve, reject) => {
        const check = () => {
          if (lines.some(pred)) resolve();
        };
        waiters.push(check);
        check();
        void exited.then(() => {
          check();
          reject(new Error(`child exited before the line; lines: ${JSON.stringify(lines)}`));
        });
      }),
  };
}

const msgs = (run: Run) => run.lines.map((l) => l.msg ?? l.step).filter(Boolean);

describe('installShutdown', () => {
  it('closes in order on SIGTERM and exits 0', async () => {
    const run = start('ok');
    await run.waitFor((l) => l.ready === true);
    run.child.kill('SIGTERM');
    expect(await run.exited).toEqual({ code: 0, signal: null });
    expect(msgs(run)).toEqual([
      'shutting down',
      'close-started',
      'children-closed',
      'parent-closed',
      'shut down cleanly',
    ]);
    expect(run.lines.find((l) => l.msg === 'shutting down')).toMatchObject({ signal: 'SIGTERM' });
  });

  it('exits 1 and says so when the close fails', async () => {
    const run = start('fail');
    await run.waitFor((l) => l.ready === true);
    run.child.kill('SIGINT');
    expect(await run.exited).toEqual({ code: 1, signal: null });
    expect(run.lines.find((l) => l.msg === 'shutdown failed')).toMatchObject({
      signal: 'SIGINT',
      err: 'Error: broker would not close',
    });
  });

  it('exits at once on a second signal while the close hangs', async () => {
    const run = start('hang');
    await run.waitFor((l) => l.ready === true);
    run.child.kill('SIGTERM');
    await run.waitFor((l) => l.step === 'close-started');
    run.child.kill('SIGINT');
    expect(await run.exited).toEqual({ code: signalExitCode('SIGINT'), signal: null });
    expect(run.lines.at(-1)).toMatchObject({
      msg: 'second signal during shutdown; exiting now',
      signal: 'SIGINT',
      firstSignal: 'SIGTERM',
    });
  });

  it('exits 1 past the limit, naming what is still open', async () => {
    const run = start('hang', 300);
    await run.waitFor((l) => l.ready === true);
    run.child.kill('SIGTERM');
    expect(await run.exited).toEqual({ code: 1, signal: null });
    expect(run.lines.at(-1)).toMatchObject({
      msg: 'shutdown did not finish in time; exiting anyway',
      limitMs: 300,
      stillOpen: 'server',
    });
  });

  it('exits with the code the command chooses after a clean close', async () => {
    const run = start('soak');
    await run.waitFor((l) => l.ready === true);
    run.child.kill('SIGINT');
    expect(await run.exited).toEqual({ code: 130, signal: null });
  });

  it('names exit codes as a shell does', () => {
    expect(signalExitCode('SIGINT')).toBe(130);
    expect(signalExitCode('SIGTERM')).toBe(143);
  });
});
