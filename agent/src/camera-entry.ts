// The `./camera` entry: the camera interface and the cameras that need neither vision
// (sharp, onnxruntime) nor the store, for a process that only takes frames (a line guard).
export type { Camera, Frame, FrameSink } from './camera/camera.ts';
export {
  MjpegExecCamera,
  type MjpegExecCameraOptions,
  type MjpegExecCameraStats,
} from './camera/mjpeg-exec-camera.ts';
export { PacingSchedule } from './camera/pacing-schedule.ts';
