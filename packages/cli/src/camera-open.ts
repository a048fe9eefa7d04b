import type { Camera } from '@linesight/agent/camera';
import type { CameraOptions, CameraSpec } from './camera-spec.ts';

/**
 * Makes the camera a spec describes (see `makeCamera` in camera-factory.ts), loading only
 * what it needs: an mjpeg-exec camera, a line's usual camera, needs neither vision nor the
 * simulator, and a line guard that runs one starts without them.
 */
export async function openCamera(spec: CameraSpec, options: CameraOptions): Promise<Camera> {
  if (spec.kind === 'mjpeg-exec') {
    const { MjpegExecCamera } = await import('@linesight/agent/camera');
    return new MjpegExecCamera({ command: spec.command, fps: options.fps });
  }
  return (await import('./camera-factory.ts')).makeCamera(spec, options);
}
