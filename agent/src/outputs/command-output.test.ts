import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { FrameResult } from '@linesight/protocol';
import { CommandOutput } from './command-output.ts';
import type { OutputVerdict } from './output.ts';
import type { CommandOutputConfig } from './outputs-config.ts';

function verdict(seq: number, v: FrameResult['verdict']): OutputVerdict {
  return {
    result: {
      schema: 'linesight.result/v1',
      deviceId: 'line-1',
      seq,
      capturedAt: new Date().toISOString(),
      verdict: v,
      score: v === 'unknown' ? null : 0.7,
      threshold: 0.5,
      model: null,
      latencyMs: { capture: 0, queue: 0, preprocess: 0, inference: 0, total: 0 },
    },
    verdictAtMs: performance.now(),
  };
}

let dir: string | undefined;
afterEach(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
  dir = undefined;
});

function config(extra: Partial<CommandOutputConfig>): CommandOutputConfig {
  return {
    kind: 'command',
    command: process.execPath,
    args: [],
    on: ['defect', 'unknown'],
    minIntervalMs: 0,
    queueMax: 16,
    dropPolicy: 'drop-oldest',
    maxAgeMs: 0,
    timeoutMs: 5000,
    retryBackoff: { initialMs: 10, maxMs: 100 },
    ...extra,
  };
}

const signal = new AbortController().signal;

describe('CommandOutput', () => {
  it('runs the command without a shell for defect and unknown, with placeholders filled', async () => {
    dir = await mkdtemp(join(tmpdir(), 'linesight-command-'));
    const log = join(dir, 'log.txt');
    const out = new CommandOutput(
      config({
        args: [
          '-e',
          'require("node:fs").appendFileSync(process.argv[1], process.argv.slice(2).join(" ") + "\\n")',
          log,
          '{verdict}',
          '{seq}',
          '$(touch injected)',
        ],
      }),
    );
    expect(await out.write([verdict(1, 'good')], signal)).toBe('skipped');
    expect(await out.write([verdict(2, 'defect')], signal)).toBe('written');
    expect(await out.write([verdict(3, 'unknown')], signal)).toBe('written');
    expect(await readFile(log, 'utf8')).toBe(
      'defect 2 $(touch injected)\nunknown 3 $(touch injected)\n',
    );
  });

  it('skips runs closer together than minIntervalMs, and fails on a non-zero exit', async () => {
    const limited = new CommandOutput(config({ args: ['-e', ''], minIntervalMs: 60_000 }));
    expect(await limited.write([verdict(1, 'defect')], signal)).toBe('written');
    expect(await limited.write([verdict(2, 'defect')], signal)).toBe('skipped');
    expect(limited.rateLimited).toBe(1);
    const failing = new CommandOutput(config({ args: ['-e', 'process.exit(3)'], on: ['unknown'] }));
    expect(await failing.write([verdict(1, 'defect')], signal)).toBe('skipped');
    await expect(failing.write([verdict(2, 'unknown')], signal)).rejects.toMatchObject({
      code: 'ERR_AGENT_OUTPUT',
    });
  });
});
