// Hand-built ONNX models and images for tests.
export { tinyContract, tinyOnnx, type TinyModelOptions } from './tiny-onnx.ts';
export { greyImage, meanScoreOnnx } from './mean-score-onnx.ts';
