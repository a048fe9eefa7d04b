export {
  renderSurface,
  type RenderSurfaceOptions,
  type RenderedSurface,
} from './render/surface.ts';
export { DEFECT_KINDS, type DefectKind } from './render/defects.ts';
export { frameDefect } from './frame-plan.ts';
export { SyntheticCamera, type SyntheticCameraOptions } from './synthetic-camera.ts';
export { applyLineShift, checkLineShift, type LineShift } from './line-shift.ts';
export {
  syntheticSamples,
  writeSyntheticDataset,
  SYNTHETIC_CLASS_NAMES,
  type SyntheticSample,
  type SyntheticClassName,
  type SyntheticSamplesOptions,
  type SyntheticDatasetOptions,
  type SyntheticDatasetCounts,
} from './synthetic-dataset.ts';
export { SimulatedFleet, type SimulatedFleetOptions } from './fleet/simulated-fleet.ts';
export { mjpegReplayCommand, type MjpegReplayCommandOptions } from './mjpeg-replay-command.ts';
export { SharedModelLoader } from './fleet/shared-model-loader.ts';
export type { ModelLoader } from '@linesight/agent';
export {
  FramePoolCamera,
  renderFramePool,
  type FramePoolOptions,
} from './fleet/frame-pool-camera.ts';
