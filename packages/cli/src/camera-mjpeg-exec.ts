import { MjpegExecCamera } from '@linesight/agent/camera';
import type { CameraOptions, CameraSpec } from './camera-spec.ts';

/**
 * Makes the camera of an `mjpeg-exec:COMMAND` spec, the one place it is built (for
 * `makeCamera` and `openCamera` alike). `fps` caps its frame rate: faster frames are
 * dropped and counted. Its imports are the agent's light camera entry only, so a line
 * guard that opens one loads neither vision nor the simulator.
 */
export function makeMjpegExecCamera(
  spec: Extract<CameraSpec, { kind: 'mjpeg-exec' }>,
  options: Pick<CameraOptions, 'fps'>,
): MjpegExecCamera {
  return new MjpegExecCamera({ command: spec.command, fps: options.fps });
}
