import { InvalidArgumentError } from 'commander';
import { FolderCamera, HttpSnapshotCamera, MjpegExecCamera, type Camera } from '@linesight/agent';
import { SyntheticCamera } from '@linesight/firmware-sim';

/** A parsed --camera value. */
export type CameraSpec =
  | { kind: 'synthetic'; seed?: number }
  | { kind: 'folder'; dir: string }
  | { kind: 'http'; url: string }
  | { kind: 'mjpeg-exec'; command: string };

/** The forms `--camera` accepts, for help and error messages. */
export const CAMERA_SPEC_FORMS =
  'synthetic, synthetic:SEED, folder:DIR, http:URL or mjpeg-exec:COMMAND';

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
  const m = /^synthetic:(\d+)$/.exec(value);
  if (m) return { kind: 'synthetic', seed: Number(m[1]) };
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

/**
 * Makes the camera a spec describes. `fps` is the frame rate of synthetic and
 * folder cameras, the poll rate of http, and a cap for mjpeg-exec (faster
 * frames are dropped and counted).
 */
export function makeCamera(
  spec: CameraSpec,
  options: { fps: number; seed: number; width?: number; height?: number; ext?: string[] },
): Camera {
  switch (spec.kind) {
    case 'folder':
      return new FolderCamera({
        dir: spec.dir,
        fps: options.fps,
        ...(options.ext ? { ext: options.ext } : {}),
      });
    case 'http':
      return new HttpSnapshotCamera({ url: spec.url, fps: options.fps });
    case 'mjpeg-exec':
      return new MjpegExecCamera({ command: spec.command, fps: options.fps });
    case 'synthetic':
      return new SyntheticCamera({
        seed: spec.seed ?? options.seed,
        fps: options.fps,
        width: options.width ?? 256,
        height: options.height ?? 256,
      });
  }
}
