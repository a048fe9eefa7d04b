import { describe, expect, it, vi } from 'vitest';
import { MjpegExecCamera } from '@linesight/agent/camera';
import { openCamera } from './camera-open.ts';

// Which of the heavy modules this file has loaded so far (each records its first import).
const loaded = vi.hoisted(() => new Set<string>());
vi.mock('./camera-factory.ts', async (importOriginal) => {
  loaded.add('camera-factory');
  return await importOriginal();
});
vi.mock('@linesight/vision', async (importOriginal) => {
  loaded.add('vision');
  return await importOriginal();
});
vi.mock('@linesight/firmware-sim', async (importOriginal) => {
  loaded.add('firmware-sim');
  return await importOriginal();
});

const MJPEG = { kind: 'mjpeg-exec', command: 'exec cat /dev/null' } as const;

// In order: the first test needs a module registry that has not loaded the factory yet.
describe('openCamera and makeCamera', () => {
  it('open an mjpeg-exec camera, capped at fps, without the factory, vision or the simulator', async () => {
    const camera = await openCamera(MJPEG, { fps: 7, seed: 1 });
    expect(camera).toBeInstanceOf(MjpegExecCamera);
    expect(camera.description).toBe('mjpeg-exec(exec cat /dev/null) @ <=7 fps');
    expect([...loaded]).toEqual([]);
  });

  it('makeCamera builds the same mjpeg-exec camera (and loads what openCamera avoided)', async () => {
    const { makeCamera } = await import('./camera-factory.ts');
    const camera = makeCamera(MJPEG, { fps: 7, seed: 1 });
    expect(camera).toBeInstanceOf(MjpegExecCamera);
    expect(camera.description).toBe('mjpeg-exec(exec cat /dev/null) @ <=7 fps');
    expect([...loaded].sort()).toEqual(['camera-factory', 'firmware-sim', 'vision']);
  });

  it('openCamera hands every other kind to the factory', async () => {
    const camera = await openCamera({ kind: 'folder', dir: '/nonexistent' }, { fps: 3, seed: 1 });
    expect(camera.description).toBe('folder(/nonexistent, 0 images @ 3 fps)');
  });
});
