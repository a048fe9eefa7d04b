import { InvalidArgumentError } from 'commander';
import { checkLineShift, type LineShift } from '@linesight/firmware-sim/line-shift';

/** A parsed --camera value. */
export type CameraSpec =
  | { kind: 'synthetic'; seed?: number; knobs?: SyntheticKnobs }
  | { kind: 'folder'; dir: string }
  | { kind: 'http'; url: string }
  | { kind: 'mjpeg-exec'; command: string };

/** Knobs of a synthetic camera given after its seed (`synthetic:SEED:k=v,...`). */
export interface SyntheticKnobs {
  defectRate?: number;
  size?: number;
  shift?: LineShift;
}

/** The forms `--camera` accepts, for help and error messages. */
export const CAMERA_SPEC_FORMS =
  'synthetic, synthetic:SEED, synthetic:SEED:KNOBS, folder:DIR, http:URL or mjpeg-exec:COMMAND';

/** The knobs `synthetic:SEED:KNOBS` accepts, comma-separated. */
export const SYNTHETIC_KNOBS =
  'defects=SHARE, size=PX, after=FRAMES, brightness=DELTA, contrast=FACTOR, blur=PX, freeze, move=SHARE';

function parseKnobs(text: string): SyntheticKnobs {
  const knobs: SyntheticKnobs = {};
  const shift: LineShift = {};
  for (const part of text.split(',')) {
    const [key = '', raw] = part.split('=', 2);
    const value = Number(raw);
    const numeric = raw !== undefined && raw.trim() !== '' && Number.isFinite(value);
    if (key === 'freeze' && raw === undefined) shift.freeze = true;
    else if (!numeric)
      throw new InvalidArgumentError(
        `synthetic knob ${JSON.stringify(part)}: expected ${SYNTHETIC_KNOBS}`,
      );
    else if (key === 'defects') knobs.defectRate = value;
    else if (key === 'size') knobs.size = value;
    else if (key === 'after') shift.afterFrames = value;
    else if (key === 'brightness') shift.brightness = value;
    else if (key === 'blur') shift.blurPx = value;
    else if (key === 'contrast') shift.contrast = value;
    else if (key === 'move') shift.move = value;
    else
      throw new InvalidArgumentError(
        `unknown synthetic knob ${JSON.stringify(key)}: expected ${SYNTHETIC_KNOBS}`,
      );
  }
  if (Object.keys(shift).length > 0) {
    try {
      checkLineShift(shift);
    } catch (err) {
      throw new InvalidArgumentError(err instanceof Error ? err.message : String(err));
    }
    knobs.shift = shift;
  }
  return knobs;
}

// The WHATWG parser is lenient (`http:ftp://x` is http://ftp/x): insist on the full form.
function httpUrl(value: string): string | undefined {
  if (!/^https?:\/\/[^/]/i.test(value)) return undefined;
  try {
    const url = new URL(value);
    return url.protocol === 'http:' || url.protocol === 'https:' ? value : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Parses `synthetic`, `synthetic:SEED`, `folder:DIR`, `http:URL` (an http or
 * https snapshot URL; a bare `http://...` is accepted too) or
 * `mjpeg-exec:COMMAND` (everything after the first colon is the shell command).
 */
export function parseCameraSpec(value: string): CameraSpec {
  if (value === 'synthetic') return { kind: 'synthetic' };
  const m = /^synthetic:(\d+)(?::(.+))?$/.exec(value);
  if (m)
    return {
      kind: 'synthetic',
      seed: Number(m[1]),
      ...(m[2] !== undefined ? { knobs: parseKnobs(m[2]) } : {}),
    };
  const colon = value.indexOf(':');
  const kind = colon < 0 ? value : value.slice(0, colon);
  const rest = colon < 0 ? '' : value.slice(colon + 1);
  switch (kind) {
    case 'folder':
      if (rest !== '') return { kind: 'folder', dir: rest };
      throw new InvalidArgumentError('folder:DIR needs a folder');
    case 'http':
    case 'https': {
      // `http:URL`, or the URL itself (`http://cam/snap.jpg` is not a valid `http:URL`).
      const url = (kind === 'http' ? httpUrl(rest) : undefined) ?? httpUrl(value);
      if (url !== undefined) return { kind: 'http', url };
      throw new InvalidArgumentError(
        `http:URL needs an absolute http:// or https:// URL, got ${JSON.stringify(rest)}`,
      );
    }
    case 'mjpeg-exec':
      if (rest.trim() !== '') return { kind: 'mjpeg-exec', command: rest };
      throw new InvalidArgumentError('mjpeg-exec:COMMAND needs a command');
    default:
      throw new InvalidArgumentError(`expected ${CAMERA_SPEC_FORMS}`);
  }
}

/** Options of the camera a spec makes. */
export interface CameraOptions {
  fps: number;
  seed: number;
  width?: number;
  height?: number;
  ext?: string[];
}
