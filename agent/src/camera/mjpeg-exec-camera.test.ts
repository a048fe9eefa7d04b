// Runs real processes: a real ffmpeg, the static binary that the dev dependency
// @ffmpeg-installer/ffmpeg ships inside the package, so `npm install` is the only
// step. A missing binary fails these tests rather than skipping them.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it, expect, beforeAll, afterEach } from 'vitest';
import sharp from 'sharp';
import ffmpegInstaller from '@ffmpeg-installer/ffmpeg';
import { isLinesightError, type LinesightError } from '@linesight/protocol';
import { MjpegExecCamera, type MjpegExecCameraOptions } from './mjpeg-exec-camera.ts';
import { eventually } from '@linesight/testkit/eventually';
import { recordingSink } from '@linesight/testkit/recording-sink';

// Single-quoted for the shell: the path is under node_modules, which may hold spaces.
const FFMPEG_BIN = `'${ffmpegInstaller.path.replaceAll("'", `'\\''`)}'`;
const FFMPEG = `${FFMPEG_BIN} -hide_banner -loglevel error -nostdin -f lavfi`;
const TESTSRC = `${FFMPEG} -i testsrc=size=160x120:rate=25 -f mjpeg -q:v 5 -`;
// Backoff without jitter, so delays are exact.
const BACKOFF = { initialMs: 50, maxMs: 200, random: () => 0 };

/**
 * Running processes of process group `pgid`, from /proc. Zombies are left
 * out: they have exited, and reaping orphans is init's job (in a container
 * whose PID 1 does not reap, they linger there whatever the camera does).
 */
function groupMembers(pgid: number): number[] {
  const members: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${name}/stat`, 'utf8');
    } catch {
      continue; // Exited while scanning.
    }
    // Fields after the parenthesized command: state ppid pgrp ...
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (Number(fields[2]) === pgid && fields[0] !== 'Z') members.push(Number(name));
  }
  return members;
}

/**
 * Waits briefly for the group to be empty: close() resolves once the command
 * has exited and the rest of its group has been sent SIGKILL, and a killed
 * process can take a moment to leave the process table.
 */
async function noneLeft(pgid: number): Promise<void> {
  await eventually(() => groupMembers(pgid).length === 0, {
    timeoutMs: 2000,
    intervalMs: 5,
    what: `process group ${pgid} gone`,
  });
}

function details(err: unknown): Record<string, unknown> {
  return (err as LinesightError).details ?? {};
}

const cameras: MjpegExecCamera[] = [];

function camera(options: MjpegExecCameraOptions): MjpegExecCamera {
  const cam = new MjpegExecCamera(options);
  cameras.push(cam);
  return cam;
}

beforeAll(() => {
  // Throws (failing the suite) when ffmpeg is missing.
  execFileSync(ffmpegInstaller.path, ['-hide_banner', '-version'], { stdio: 'ignore' });
});

afterEach(async () => {
  await Promise.all(cameras.splice(0).map((cam) => cam.close()));
});

describe('MjpegExecCamera with a real ffmpeg', () => {
  it('delivers decodable JPEG frames with contiguous seq, and close() leaves no process', async () => {
    const cam = camera({ command: TESTSRC });
    expect(cam.description).toBe(`mjpeg-exec(${TESTSRC})`);
    const sink = recordingSink();
    await cam.start(sink);
    const pid = cam.stats.pid;
    expect(pid).toBeGreaterThan(0);
    await eventually(() => sink.frames.length >= 10, { timeoutMs: 10_000, intervalMs: 5 });
    await cam.close();
    const delivered = sink.frames.length;
    expect(sink.errors).toEqual([]);
    expect(sink.frames.map((f) => f.seq)).toEqual([...Array(delivered).keys()]);
    expect(cam.framesDelivered).toBe(delivered);
    for (const frame of sink.frames.slice(0, 3)) {
      const meta = await sharp(frame.image).metadata();
      expect(meta).toMatchObject({ format: 'jpeg', width: 160, height: 120 });
      const { data } = await sharp(frame.image).raw().toBuffer({ resolveWithObject: true });
      expect(data.length).toBe(160 * 120 * 3);
    }
    await noneLeft(pid as number);
    expect(cam.stats.pid).toBeUndefined();
    expect(sink.frames.length).toBe(delivered); // Nothing after close.
    await cam.close();
  });

  it('takes capture times from X-Timestamp headers when plausible, arrival time otherwise', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'linesight-mjpeg-ts-'));
    try {
      const jpeg = await sharp({
        create: { width: 8, height: 8, channels: 3, background: { r: 9, g: 9, b: 9 } },
      })
        .jpeg()
        .toBuffer();
      const nowMs = Date.now();
      const part = (headers: string) =>
        Buffer.concat([Buffer.from(`--b\r\nContent-Type: image/jpeg\r\n${headers}\r\n`), jpeg]);
      const stamp = (ms: number) => `X-Timestamp: ${(ms / 1000).toFixed(3)}\r\n`;
      // 3 s ago, 2 s ago, 60 s ago (too old), none, 30 s ahead (a clock that is not wall time).
      writeFileSync(
        join(dir, 'stream'),
        Buffer.concat([
          part(stamp(nowMs - 3000)),
          part(stamp(nowMs - 2000)),
          part(stamp(nowMs - 60_000)),
          part(''),
          part(stamp(nowMs + 30_000)),
        ]),
      );
      // Frames 2 s apart by their stamps arrive at once: the fps cap judges capture times.
      const cam = camera({
        command: `cat ${join(dir, 'stream')}; sleep 30`,
        fps: 10,
        stallTimeoutMs: 0,
      });
      const sink = recordingSink();
      await cam.start(sink);
      // Frames 0 and 1 pass the cap (2 s apart by their stamps); the last three arrive at
      // once by arrival time, so two of them are over the cap.
      await eventually(() => cam.stats.framesDelivered + cam.stats.framesDroppedRateCap >= 5, {
        timeoutMs: 10_000,
        intervalMs: 5,
      });
      const at = sink.frames.map((f) => f.capturedAt.getTime());
      expect(at.slice(0, 2)).toEqual([nowMs - 3000, nowMs - 2000]);
      expect(at).toHaveLength(3);
      expect(at[2]).toBeGreaterThanOrEqual(nowMs);
      expect(cam.stats).toMatchObject({ framesTimestampIgnored: 2, framesDroppedRateCap: 2 });
      expect(sink.frames.map((f) => f.seq)).toEqual([0, 1, 2]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('restarts a command that exits, continues seq and reports each exit', async () => {
    const cam = camera({
      command: `${FFMPEG} -i testsrc=size=160x120:rate=50 -frames:v 5 -f mjpeg -q:v 5 -`,
      backoff: BACKOFF,
    });
    const sink = recordingSink();
    await cam.start(sink);
    await eventually(() => sink.frames.length >= 20, {
      timeoutMs: 20_000,
      intervalMs: 5,
      what: '20 frames over 4 runs',
    });
    await cam.close();
    expect(sink.frames.map((f) => f.seq)).toEqual([...Array(sink.frames.length).keys()]);
    expect(sink.errors.length).toBeGreaterThanOrEqual(3);
    expect(sink.errors.every((e) => isLinesightError(e, 'ERR_CAMERA'))).toBe(true);
    const first = details(sink.errors[0]);
    expect(first).toMatchObject({ exitCode: 0, signal: null, framesThisRun: 5, restartInMs: 50 });
    expect(sink.errors.slice(0, 3).map((e) => details(e).restartInMs)).toEqual([50, 100, 200]);
    expect((sink.errors[0] as Error).message).toContain('exited with code 0');
    expect(cam.stats.restarts).toBeGreaterThanOrEqual(3);
    // The frames of every run decode.
    const meta = await sharp(sink.frames[17]?.image).metadata();
    expect(meta).toMatchObject({ format: 'jpeg', width: 160, height: 120 });
  });

  it('drops frames over maxFrameBytes and reports them without flooding', async () => {
    const cam = camera({ command: TESTSRC, maxFrameBytes: 1024 });
    const sink = recordingSink();
    await cam.start(sink);
    await eventually(() => cam.stats.framesDroppedOversize >= 10, {
      timeoutMs: 10_000,
      intervalMs: 5,
    });
    expect(sink.frames).toEqual([]);
    expect(sink.errors).toHaveLength(1);
    expect((sink.errors[0] as Error).message).toContain('oversize');
  });

  it('caps the frame rate, counting what it drops', async () => {
    const cam = camera({ command: TESTSRC.replace('rate=25', 'rate=100'), fps: 10 });
    const sink = recordingSink();
    await cam.start(sink);
    await eventually(() => sink.frames.length >= 6, { timeoutMs: 10_000, intervalMs: 5 });
    await cam.close();
    const spanMs = (sink.frameAtMs.at(-1) ?? 0) - (sink.frameAtMs[0] ?? 0);
    // ffmpeg's lavfi source is not paced, so frames pour in: six frames at
    // <= 10 fps still span 5 periods less the early tolerance (and a little
    // for the sink's own clock reading).
    expect(spanMs).toBeGreaterThanOrEqual(5 * 100 - 50 - 5);
    expect(cam.stats.framesDroppedRateCap).toBeGreaterThan(0);
    expect(sink.frames.map((f) => f.seq)).toEqual([...Array(sink.frames.length).keys()]);
  });
});

describe('MjpegExecCamera failures and shutdown', () => {
  it('reports exit code and stderr tail, with a growing backoff', async () => {
    const cam = camera({
      command: 'echo "boom: no camera on /dev/video0" >&2; exit 3',
      backoff: BACKOFF,
    });
    const sink = recordingSink();
    await cam.start(sink);
    await eventually(() => sink.errors.length >= 4, { timeoutMs: 10_000, intervalMs: 5 });
    await cam.close();
    const d = sink.errors.map(details);
    expect(d.slice(0, 4).map((x) => x.restartInMs)).toEqual([50, 100, 200, 200]);
    expect(d[0]).toMatchObject({ exitCode: 3, framesThisRun: 0 });
    expect(d[0]?.stderr).toEqual(['boom: no camera on /dev/video0']);
    expect((sink.errors[0] as Error).message).toMatch(/exited with code 3.*boom: no camera/);
  });

  it('reports a command that does not exist (exit 127)', async () => {
    const cam = camera({ command: 'linesight-no-such-camera-tool --mjpeg', backoff: BACKOFF });
    const sink = recordingSink();
    await cam.start(sink);
    await eventually(() => sink.errors.length >= 1, { timeoutMs: 10_000, intervalMs: 5 });
    expect(details(sink.errors[0])).toMatchObject({ exitCode: 127 });
    expect(String(details(sink.errors[0]).stderr)).toContain('not found');
  });

  it('reports a shell that cannot be spawned, and retries', async () => {
    const cam = camera({ command: TESTSRC, shell: '/nonexistent/sh', backoff: BACKOFF });
    const sink = recordingSink();
    await cam.start(sink);
    await eventually(() => sink.errors.length >= 2, { timeoutMs: 10_000, intervalMs: 5 });
    await cam.close();
    expect(isLinesightError(sink.errors[0], 'ERR_CAMERA')).toBe(true);
    expect((sink.errors[0] as Error).message).toContain('could not start');
    expect(((sink.errors[0] as Error).cause as NodeJS.ErrnoException).code).toBe('ENOENT');
    expect(cam.stats.restarts).toBeGreaterThanOrEqual(1);
  });

  it('restarts a command that stalls', async () => {
    const cam = camera({ command: 'exec sleep 30', stallTimeoutMs: 200, backoff: BACKOFF });
    const sink = recordingSink();
    await cam.start(sink);
    const firstPid = cam.stats.pid as number;
    await eventually(() => sink.errors.length >= 1 && cam.stats.pid !== undefined, {
      timeoutMs: 10_000,
      intervalMs: 5,
    });
    expect(details(sink.errors[0])).toMatchObject({ stalled: true, signal: 'SIGTERM' });
    expect((sink.errors[0] as Error).message).toContain('sent no frame for 200 ms');
    await noneLeft(firstPid);
    expect(cam.stats.pid).not.toBe(firstPid);
  });

  it('close() stops a whole pipeline, escalating to SIGKILL when SIGTERM is ignored', async () => {
    // Ignored signals are inherited, so every process of the group ignores SIGTERM.
    const cam = camera({ command: `trap '' TERM; sleep 30 | cat`, killGraceMs: 300 });
    const sink = recordingSink();
    await cam.start(sink);
    const pid = cam.stats.pid as number;
    await eventually(() => groupMembers(pid).length >= 3, {
      timeoutMs: 10_000,
      intervalMs: 5,
      what: 'sh, sleep and cat running',
    });
    const t0 = performance.now();
    await cam.close();
    expect(performance.now() - t0).toBeGreaterThanOrEqual(290);
    await noneLeft(pid);
    expect(sink.errors).toEqual([]);
  });

  it('close() stops an ffmpeg pipeline with SIGTERM alone', async () => {
    const cam = camera({ command: `${TESTSRC} | cat`, killGraceMs: 5000 });
    const sink = recordingSink();
    await cam.start(sink);
    const pid = cam.stats.pid as number;
    await eventually(() => sink.frames.length >= 3, { timeoutMs: 10_000, intervalMs: 5 });
    const t0 = performance.now();
    await cam.close();
    expect(performance.now() - t0).toBeLessThan(5000);
    await noneLeft(pid);
    expect(sink.errors).toEqual([]);
  });

  it('close() before the first frame, twice, and start() after close', async () => {
    const cam = camera({ command: TESTSRC });
    const sink = recordingSink();
    await cam.start(sink);
    const pid = cam.stats.pid as number;
    const closing = cam.close();
    expect(cam.close()).toBe(closing);
    await closing;
    await noneLeft(pid);
    await expect(cam.start(sink)).rejects.toSatisfy((e) => isLinesightError(e, 'ERR_CAMERA'));
    expect(sink.errors).toEqual([]);
  });

  it('rejects bad options naming every problem', () => {
    let caught: unknown;
    try {
      new MjpegExecCamera({ command: ' ', fps: -1, maxFrameBytes: 10, killGraceMs: -5 });
    } catch (err) {
      caught = err;
    }
    expect(isLinesightError(caught, 'ERR_CAMERA')).toBe(true);
    for (const word of ['command', 'fps', 'maxFrameBytes', 'killGraceMs']) {
      expect((caught as Error).message).toContain(word);
    }
  });
});
