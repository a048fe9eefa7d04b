// The statistics live in vision so a model's reference profile is computed exactly as devices do.
export { frameImageStats, type FrameImageStats } from '@linesight/vision';
