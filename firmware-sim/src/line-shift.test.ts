import { describe, expect, it } from 'vitest';
import sharp from 'sharp';
import { applyLineShift, checkLineShift } from './line-shift.ts';
import { SyntheticCamera } from './synthetic-camera.ts';
import type { Frame } from '@linesight/agent';

describe('applyLineShift', () => {
  it('brightens with clipping, blurs, and shows the belt on a moved view', () => {
    const px = new Uint8Array([10, 250, 100, 100]);
    applyLineShift(px, 2, 2, { brightness: 20 });
    expect([...px]).toEqual([30, 255, 120, 120]);
    const edge = new Uint8Array([0, 0, 255, 255, 0, 0, 255, 255]);
    applyLineShift(edge, 4, 2, { blurPx: 1 });
    expect(edge[1]).toBeGreaterThan(0);
    expect(edge[2]).toBeLessThan(255);
    const texture = new Uint8Array([90, 110, 90, 110]);
    applyLineShift(texture, 2, 2, { contrast: 2 });
    expect([...texture]).toEqual([80, 120, 80, 120]);
    const view = new Uint8Array(16).fill(200);
    applyLineShift(view, 4, 4, { move: 0.5 });
    expect([...view.slice(0, 4)]).toEqual([25, 25, 200, 200]);
  });

  it('refuses bad shifts', () => {
    expect(() => checkLineShift({ move: 1.5, blurPx: -1 })).toThrow(/move.*blurPx|blurPx.*move/);
  });
});

describe('SyntheticCamera with a shift', () => {
  async function frames(shift: ConstructorParameters<typeof SyntheticCamera>[0]['shift']) {
    const camera = new SyntheticCamera({
      seed: 3,
      width: 64,
      height: 64,
      fps: 1000,
      maxFrames: 4,
      shift,
    });
    const got: Frame[] = [];
    await new Promise<void>((resolve, reject) => {
      void camera.start({
        frame: (f) => {
          got.push(f);
          if (got.length === 4) resolve();
        },
        error: reject,
      });
    });
    await camera.close();
    return got;
  }

  it('freezes on the last frame before the shift', async () => {
    const got = await frames({ afterFrames: 2, freeze: true });
    expect(got[1]?.image.equals(got[0]?.image as Buffer)).toBe(false);
    expect(got[2]?.image.equals(got[1]?.image as Buffer)).toBe(true);
    expect(got[3]?.image.equals(got[1]?.image as Buffer)).toBe(true);
  });

  it('freezes on the first frame when frozen from the start', async () => {
    const got = await frames({ freeze: true });
    expect(got.every((f) => f.image.equals(got[0]?.image as Buffer))).toBe(true);
  });

  it('brightens frames from the shift on', async () => {
    const plain = await frames(undefined);
    const bright = await frames({ afterFrames: 2, brightness: 60 });
    const mean = async (b: Buffer) => (await sharp(b).stats()).channels[0]?.mean ?? 0;
    expect(await mean(bright[1]?.image as Buffer)).toBeCloseTo(
      await mean(plain[1]?.image as Buffer),
      0,
    );
    expect(await mean(bright[3]?.image as Buffer)).toBeGreaterThan(
      (await mean(plain[3]?.image as Buffer)) + 40,
    );
  });
});
