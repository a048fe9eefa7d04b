import type { Camera } from '@linesight/agent/camera';
import type { CameraOptions, CameraSpec } from './camera-spec.ts';

/**
 * Makes the camera a spec describes (see `makeCamera` in camera-factory.ts), loading only
 * what it needs: an mjpeg-exec camera, a line's usual camera, needs neither vision nor the
 * simulator, and a line guard that runs one starts without them. It is built by
 * camera-mjpeg-exec.ts, as in `makeCamera`, without loading the factory.
 */
export async function openCamera(spec: CameraSpec, options: CameraOptions): Promise<Camera> {
  if (spec.kind === 'mjpeg-exec') {
    return (await import('./camera-mjpeg-exec.ts')).makeMjpegExecCamera(spec, options);
  }
  return (await import('./camera-factory.ts')).makeCamera(spec, options);
}
