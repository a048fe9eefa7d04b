import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import sharp from 'sharp';
import { greyInputSpec } from '@linesight/protocol';
import { OpenCvPeer } from './opencv-peer.ts';

function hasOpenCv(python: string): boolean {
  try {
    execFileSync(python, ['-c', 'import cv2'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}
const withOpenCv = ['python3', '/usr/bin/python3'].find(hasOpenCv);

describe('OpenCvPeer', () => {
  it('is skipped with a message when no Python has OpenCV, or for a colour model', async () => {
    const missing = await OpenCvPeer.start(greyInputSpec(32), ['/nonexistent/python3']);
    expect('skipped' in missing && missing.skipped).toMatch(
      /python3-opencv.*\/nonexistent\/python3/,
    );
    const colour = await OpenCvPeer.start({
      ...greyInputSpec(32),
      channels: 3,
      mean: [0, 0, 0],
      std: [1, 1, 1],
    });
    expect('skipped' in colour && colour.skipped).toMatch(/grey/);
  });

  // Only where python3-opencv is installed (not in CI).
  it.runIf(withOpenCv !== undefined)(
    'preprocesses a frame with a reduced decode and times itself',
    async () => {
      const peer = await OpenCvPeer.start(greyInputSpec(64), [withOpenCv as string]);
      if ('skipped' in peer) throw new Error(peer.skipped);
      try {
        const frame = await sharp({
          create: { width: 320, height: 256, channels: 3, background: { r: 90, g: 90, b: 90 } },
        })
          .toColourspace('b-w')
          .jpeg()
          .toBuffer();
        const answer = await peer.preprocess(frame);
        expect(answer).toMatchObject({ reduce: 4, width: 64, height: 64 });
        expect(answer.mean).toBeCloseTo(90, 0);
        expect(answer.ms).toBeGreaterThan(0);
      } finally {
        await peer.close();
      }
      await peer.close();
    },
  );
});
