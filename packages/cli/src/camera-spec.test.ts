import { describe, expect, it } from 'vitest';
import { parseCameraSpec } from './camera-spec.ts';

describe('parseCameraSpec synthetic knobs', () => {
  it('parses a seed with drift knobs', () => {
    expect(parseCameraSpec('synthetic:11:defects=0.4,size=192,after=60,brightness=40')).toEqual({
      kind: 'synthetic',
      seed: 11,
      knobs: { defectRate: 0.4, size: 192, shift: { afterFrames: 60, brightness: 40 } },
    });
    expect(parseCameraSpec('synthetic:3:freeze,blur=3,move=0.3,contrast=1.5')).toEqual({
      kind: 'synthetic',
      seed: 3,
      knobs: { shift: { freeze: true, blurPx: 3, move: 0.3, contrast: 1.5 } },
    });
    expect(parseCameraSpec('synthetic:5')).toEqual({ kind: 'synthetic', seed: 5 });
  });

  it('names a bad knob', () => {
    expect(() => parseCameraSpec('synthetic:1:tilt=3')).toThrow(/unknown synthetic knob "tilt"/);
    expect(() => parseCameraSpec('synthetic:1:blur=x')).toThrow(/blur=x/);
    expect(() => parseCameraSpec('synthetic:1:move=2')).toThrow(/move must be in/);
  });
});
