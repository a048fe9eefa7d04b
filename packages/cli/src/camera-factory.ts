import { FolderCamera, HttpSnapshotCamera, type Camera } from '@linesight/agent';
import { SyntheticCamera } from '@linesight/firmware-sim';
import { makeMjpegExecCamera } from './camera-mjpeg-exec.ts';
import type { CameraOptions, CameraSpec } from './camera-spec.ts';

/**
 * Makes the camera a spec describes. `fps` is the frame rate of synthetic and
 * folder cameras, the poll rate of http, and a cap for mjpeg-exec (faster
 * frames are dropped and counted).
 */
export function makeCamera(spec: CameraSpec, options: CameraOptions): Camera {
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
      return makeMjpegExecCamera(spec, options);
    case 'synthetic':
      return new SyntheticCamera({
        seed: spec.seed ?? options.seed,
        fps: options.fps,
        width: spec.knobs?.size ?? options.width ?? 256,
        height: spec.knobs?.size ?? options.height ?? 256,
        ...(spec.knobs?.defectRate !== undefined ? { defectRate: spec.knobs.defectRate } : {}),
        ...(spec.knobs?.shift !== undefined ? { shift: spec.knobs.shift } : {}),
      });
  }
}
