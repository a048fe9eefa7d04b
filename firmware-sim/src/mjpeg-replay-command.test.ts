import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { MjpegParser } from '@linesight/agent';
import { mjpegReplayCommand } from './mjpeg-replay-command.ts';

// Two tiny structurally valid JPEGs (SOI, a comment segment, EOI).
const jpeg = (tag: number) => Buffer.from([0xff, 0xd8, 0xff, 0xfe, 0x00, 0x03, tag, 0xff, 0xd9]);

let dir: string | undefined;
afterEach(async () => {
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
});

describe('mjpegReplayCommand', () => {
  it("is a shell command that streams the folder's frames in name order, whatever the folder's name", async () => {
    dir = await mkdtemp(join(tmpdir(), 'linesight-replay-command-'));
    // A space, a single quote and a dollar sign: all must reach the process as they are.
    const framesDir = join(dir, "line 1's $frames");
    await mkdir(framesDir);
    await writeFile(join(framesDir, '0001.jpg'), jpeg(1));
    await writeFile(join(framesDir, '0002.jpg'), jpeg(2));
    const command = mjpegReplayCommand({ framesDir, fps: 50 });
    const child = spawn('/bin/sh', ['-c', command], { stdio: ['ignore', 'pipe', 'pipe'] });
    const tags: number[] = [];
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const got = new Promise<void>((resolve, reject) => {
      const parser = new MjpegParser({
        onFrame: (frame) => {
          tags.push(frame[6]!);
          if (tags.length === 3) resolve();
        },
      });
      child.stdout.on('data', (chunk: Buffer) => parser.push(chunk));
      child.once('exit', (code) => reject(new Error(`camera exited (${code}): ${stderr}`)));
    });
    try {
      await got;
    } finally {
      child.kill();
    }
    expect(tags).toEqual([1, 2, 1]);
  });
});
