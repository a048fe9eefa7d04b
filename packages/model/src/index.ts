export type { TrainingSample } from './training-sample.ts';
export {
  readImageFolder,
  type FolderSample,
  type ImageFolderDataset,
} from './image-folder-dataset.ts';
export {
  splitDataset,
  datasetFingerprint,
  holdoutSplit,
  trainingImageHashes,
  samplesSeenInTraining,
  IMAGE_HASH_PREFIX_HEX,
  foldSplits,
  type DatasetSplit,
  type FoldSplit,
  type HoldoutSplit,
  type HoldoutRecord,
} from './dataset-split.ts';
export { computeMetrics, auroc, averagePrecision, type EvalMetrics } from './metrics.ts';
export {
  chooseThreshold,
  quantile,
  GOOD_QUANTILE,
  GOOD_QUANTILE_MARGIN,
  type ThresholdChoice,
  type ThresholdRule,
} from './threshold.ts';
export { fixedHistogram } from './histogram.ts';
export {
  ONNX_IR_VERSION,
  ONNX_OPSET,
  GraphBuilder,
  encodeModel,
  node,
  tensorValueInfo,
  floatTensor,
  int64Tensor,
  intAttr,
  intsAttr,
  floatAttr,
  floatsAttr,
  stringAttr,
  type GraphSpec,
} from './onnx-graph.ts';
export type { TrainingProgress, TrainedModel } from './training-result.ts';
export { evaluateModel, type ModelEvaluation, type EvaluateOptions } from './evaluate.ts';
export {
  trainDefectModel,
  pyramidModelForward,
  type DefectModelOptions,
  type TrainedDefectModel,
  type MapSource,
  type TrainingMode,
} from './defect-model.ts';
export { exportPyramidModelOnnx, type PyramidModelParams } from './pyramid-graph.ts';
export {
  pyramidFeatures,
  pyramidKernels,
  featureChannels,
  featureNames,
  gridSide,
  type PyramidGeometry,
  type PyramidKernel,
  type CellFeatures,
} from './pyramid-features.ts';
export {
  trainCellHead,
  headCellLogits,
  logMeanExp,
  mergeHeads,
  type CellHead,
} from './cell-head.ts';
export {
  paintSyntheticAnomaly,
  SYNTHETIC_ANOMALY_KINDS,
  type SyntheticAnomalyKind,
} from './synthetic-anomalies.ts';
