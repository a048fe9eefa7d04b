import { InvalidArgumentError } from 'commander';
import { FolderCamera, type Camera } from '@linesight/agent';
import { SyntheticCamera } from '@linesight/firmware-sim';

/** A parsed --camera value. */
export type CameraSpec = { kind: 'synthetic'; seed?: number } | { kind: 'folder'; dir: string };

/** Parses `synthetic`, `synthetic:SEED` or `folder:DIR`. */
export function parseCameraSpec(value: string): CameraSpec {
  if (value === 'synthetic') return { kind: 'synthetic' };
  const m = /^synthetic:(\d+)$/.exec(value);
  if (m) return { kind: 'synthetic', seed: Number(m[1]) };
  if (value.startsWith('folder:') && value.length > 7)
    return { kind: 'folder', dir: value.slice(7) };
  throw new InvalidArgumentError('expected synthetic, synthetic:SEED or folder:DIR');
}

/** Makes the camera a spec describes. */
export function makeCamera(
  spec: CameraSpec,
  options: { fps: number; seed: number; width?: number; height?: number },
): Camera {
  if (spec.kind === 'folder') return new FolderCamera({ dir: spec.dir, fps: options.fps });
  return new SyntheticCamera({
    seed: spec.seed ?? options.seed,
    fps: options.fps,
    width: options.width ?? 256,
    height: options.height ?? 256,
  });
}
