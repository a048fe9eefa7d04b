export {
  CONTRACT_METADATA_KEY,
  HistogramSchema,
  ModelContractSchema,
  parseModelContract,
  type Histogram,
  type ModelContract,
} from './model-contract.ts';
export { decodeImagePixels, rawToTensor, preprocessImage } from './preprocess.ts';
export { separateMasks } from './mask-files.ts';
export {
  readImageHeader,
  sniffImageFormat,
  type ImageFormat,
  type ImageHeader,
} from './image-format.ts';
export { tensorStatistics, type ImageStatistics } from './image-statistics.ts';
export { frameImageStats, type FrameImageStats } from './frame-statistics.ts';
export { readModelContract, withModelContract } from './onnx-contract.ts';
export { OnnxModel, type OnnxModelOptions } from './onnx-model.ts';
export type {
  ModelOutput,
  AnomalyMap,
  RunOptions,
  ScoredImage,
  ScoringModel,
} from './scoring-model.ts';
export { WorkerOnnxModel, type WorkerOnnxModelOptions } from './worker-onnx-model.ts';
export { InferenceWorkerPool, type InferenceWorkerPoolOptions } from './inference-worker-pool.ts';
export { ModelSlot, type ModelLease, type Closeable } from './model-slot.ts';
export { goldenInputs, withinGoldenTolerance, GOLDEN_INPUT_COUNT } from './golden-inputs.ts';
export { goldenScoresOf } from './golden-scores.ts';
