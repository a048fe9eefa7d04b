import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import * as fsp from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it, expect, vi, afterEach } from 'vitest';
import { isLinesightError, type LinesightError } from '@linesight/protocol';
import { FolderCamera, type FolderCameraOptions } from './folder-camera.ts';
import { eventually } from '@linesight/testkit/eventually';
import { recordingSink } from '@linesight/testkit/recording-sink';

// Real fs by default; the pacing tests swap in an in-memory folder so the
// fake clock alone decides when things happen.
vi.mock('node:fs/promises', async (importOriginal) => {
  const actual = await importOriginal<typeof import('node:fs/promises')>();
  return { ...actual, readFile: vi.fn(actual.readFile), readdir: vi.fn(actual.readdir) };
});

const JPEG = (tag: string): Buffer =>
  Buffer.concat([Buffer.from([0xff, 0xd8, 0xff]), Buffer.from(tag)]);

const cameras: FolderCamera[] = [];
const dirs: string[] = [];

afterEach(async () => {
  await Promise.all(cameras.splice(0).map((cam) => cam.close()));
  vi.useRealTimers();
  vi.mocked(fsp.readFile).mockReset();
  vi.mocked(fsp.readdir).mockReset();
  const actual = await vi.importActual<typeof import('node:fs/promises')>('node:fs/promises');
  vi.mocked(fsp.readFile).mockImplementation(actual.readFile as typeof fsp.readFile);
  vi.mocked(fsp.readdir).mockImplementation(actual.readdir as typeof fsp.readdir);
  await Promise.all(dirs.splice(0).map((dir) => rm(dir, { recursive: true, force: true })));
});

function camera(options: FolderCameraOptions): FolderCamera {
  const cam = new FolderCamera(options);
  cameras.push(cam);
  return cam;
}

async function folder(files: Record<string, Buffer | 'dir' | 'dangling'>): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'linesight-folder-camera-'));
  dirs.push(dir);
  for (const [name, content] of Object.entries(files)) {
    if (content === 'dir') await mkdir(join(dir, name));
    else if (content === 'dangling') await symlink(join(dir, 'missing'), join(dir, name));
    else await writeFile(join(dir, name), content);
  }
  return dir;
}

// An in-memory folder: name -> bytes, or an Error to throw when read.
function fakeFolder(files: Record<string, Buffer | Error>): void {
  vi.mocked(fsp.readdir).mockImplementation((async () => Object.keys(files)) as never);
  vi.mocked(fsp.readFile).mockImplementation((async (path: string) => {
    const entry = files[path.split('/').at(-1) ?? ''];
    if (entry === undefined) throw new Error(`ENOENT ${path}`);
    if (entry instanceof Error) throw entry;
    return entry;
  }) as never);
}

describe('FolderCamera on a real folder', () => {
  it('skips masks beside their images (the dataset layout) and honours ext', async () => {
    const dir = await folder({
      'a.jpg': JPEG('a'),
      'a.png': JPEG('mask-a'), // The mask of a.jpg.
      'b.jpg': JPEG('b'),
      'b.png': JPEG('mask-b'),
      'c.png': JPEG('c'), // No partner: a frame.
      'd.webp': JPEG('d'),
    });
    const cam = camera({ dir, fps: 200 });
    const sink = recordingSink();
    await cam.start(sink);
    await eventually(() => sink.frames.length >= 4, { timeoutMs: 10_000, intervalMs: 5 });
    await cam.close();
    const tags = sink.frames.map((f) => f.image.subarray(3).toString());
    expect(tags.slice(0, 4)).toEqual(['a', 'b', 'c', 'd']);

    const jpgOnly = camera({ dir, fps: 200, ext: ['.JPG'] });
    const sink2 = recordingSink();
    await jpgOnly.start(sink2);
    await eventually(() => sink2.frames.length >= 3, { timeoutMs: 10_000, intervalMs: 5 });
    await jpgOnly.close();
    expect(sink2.frames.slice(0, 3).map((f) => f.image.subarray(3).toString())).toEqual([
      'a',
      'b',
      'a',
    ]);
    await expect(camera({ dir, fps: 1, ext: ['bmp'] }).start(recordingSink())).rejects.toThrow(
      /holds no images \(\.bmp; masks beside images do not count\)/,
    );
  });

  it('replays images in name order, looping, skipping what it cannot read', async () => {
    const dir = await folder({
      'c.png': JPEG('c'),
      'a.jpg': JPEG('a'),
      'b.jpg': 'dir', // Unreadable: EISDIR.
      'd.jpeg': 'dangling', // Unreadable: ENOENT.
      'e.JPG': JPEG('e'),
      'notes.txt': Buffer.from('ignored'),
    });
    const cam = camera({ dir, fps: 200 });
    const sink = recordingSink();
    await cam.start(sink);
    expect(cam.description).toBe(`folder(${dir}, 5 images @ 200 fps)`);
    await eventually(() => sink.frames.length >= 7, { timeoutMs: 10_000, intervalMs: 5 });
    await cam.close();
    const tags = sink.frames.map((f) => f.image.subarray(3).toString());
    expect(tags.slice(0, 7)).toEqual(['a', 'c', 'e', 'a', 'c', 'e', 'a']);
    expect(sink.frames.map((f) => f.seq)).toEqual([...Array(sink.frames.length).keys()]);
    expect(sink.errors.length).toBeGreaterThanOrEqual(4);
    expect(sink.errors.every((e) => isLinesightError(e, 'ERR_CAMERA'))).toBe(true);
    const paths = sink.errors.slice(0, 4).map((e) => (e as LinesightError).details?.path);
    expect(paths).toEqual([
      join(dir, 'b.jpg'),
      join(dir, 'd.jpeg'),
      join(dir, 'b.jpg'),
      join(dir, 'd.jpeg'),
    ]);
  });

  it('stops after one pass when loop is false', async () => {
    const dir = await folder({ '1.jpg': JPEG('1'), '2.jpg': JPEG('2') });
    const cam = camera({ dir, fps: 500, loop: false });
    const sink = recordingSink();
    await cam.start(sink);
    await eventually(() => sink.frames.length >= 2, { timeoutMs: 10_000, intervalMs: 5 });
    await cam.close();
    expect(sink.frames.map((f) => f.image.subarray(3).toString())).toEqual(['1', '2']);
  });

  it('rejects start() on a folder without images or that does not exist', async () => {
    const empty = await folder({ 'readme.md': Buffer.from('x') });
    await expect(camera({ dir: empty, fps: 1 }).start(recordingSink())).rejects.toSatisfy((e) =>
      isLinesightError(e, 'ERR_CAMERA'),
    );
    await expect(
      camera({ dir: join(empty, 'nope'), fps: 1 }).start(recordingSink()),
    ).rejects.toSatisfy((e) => isLinesightError(e, 'ERR_CAMERA'));
    expect(() => new FolderCamera({ dir: empty, fps: 0 })).toThrow(/fps/);
  });
});

describe('FolderCamera pacing (fake clock)', () => {
  it('delivers at --fps on an absolute schedule; an unreadable file leaves its slot empty', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance', 'Date'] });
    const t0 = performance.now();
    fakeFolder({ 'a.jpg': JPEG('a'), 'b.jpg': new Error('EIO'), 'c.jpg': JPEG('c') });
    const cam = camera({ dir: '/cam', fps: 4 });
    const sink = recordingSink();
    await cam.start(sink);
    await vi.advanceTimersByTimeAsync(1600);
    const rel = (xs: number[]): number[] => xs.map((x) => Math.round(x - t0));
    expect(rel(sink.frameAtMs)).toEqual([0, 500, 750, 1250, 1500]);
    expect(rel(sink.errorAtMs)).toEqual([250, 1000]);
    expect(sink.frames.map((f) => f.image.subarray(3).toString())).toEqual([
      'a',
      'c',
      'a',
      'c',
      'a',
    ]);
    expect(sink.frames.map((f) => f.seq)).toEqual([0, 1, 2, 3, 4]);
  });

  it('close() waits for a read in progress and drops it', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance', 'Date'] });
    fakeFolder({ 'a.jpg': JPEG('a') });
    let release: ((b: Buffer) => void) | undefined;
    vi.mocked(fsp.readFile).mockImplementationOnce(
      (() => new Promise<Buffer>((resolve) => (release = resolve))) as never,
    );
    const cam = camera({ dir: '/cam', fps: 10 });
    const sink = recordingSink();
    await cam.start(sink);
    await vi.advanceTimersByTimeAsync(1);
    let closed = false;
    const closing = cam.close().then(() => (closed = true));
    await vi.advanceTimersByTimeAsync(500);
    expect(closed).toBe(false);
    release?.(JPEG('a'));
    await closing;
    await vi.advanceTimersByTimeAsync(500);
    expect(sink.frames).toEqual([]);
    expect(cam.framesDelivered).toBe(0);
  });
});
