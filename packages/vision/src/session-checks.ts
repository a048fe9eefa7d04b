import { LinesightError } from '@linesight/protocol';
import type { ModelContract } from './model-contract.ts';
import type { AnomalyMap } from './scoring-model.ts';

/** What the checks need of an ONNX Runtime session (in-process or relayed from a worker). */
export interface SessionShape {
  readonly inputNames: readonly string[];
  readonly outputNames: readonly string[];
  readonly inputMetadata: readonly {
    name: string;
    isTensor: boolean;
    type?: string;
    shape?: readonly (number | string)[];
  }[];
}

/** What the checks need of an output tensor. */
export interface TensorLike {
  readonly type: string;
  readonly dims: readonly number[];
  readonly data: unknown;
}

/** Checks a session's inputs and outputs against the contract; throws ERR_MODEL_CONTRACT. */
export function checkSessionAgainstContract(session: SessionShape, contract: ModelContract): void {
  const { inputSpec, outputs } = contract;
  if (!session.inputNames.includes(inputSpec.inputName)) {
    throw new LinesightError(
      'ERR_MODEL_CONTRACT',
      `contract input "${inputSpec.inputName}" is not a model input (inputs: ${session.inputNames.join(', ')})`,
    );
  }
  for (const name of [outputs.score, outputs.map]) {
    if (name !== undefined && !session.outputNames.includes(name)) {
      throw new LinesightError(
        'ERR_MODEL_CONTRACT',
        `contract output "${name}" is not a model output (outputs: ${session.outputNames.join(', ')})`,
      );
    }
  }
  const meta = session.inputMetadata.find((m) => m.name === inputSpec.inputName);
  if (meta === undefined || !meta.isTensor) return;
  if (meta.type !== 'float32') {
    throw new LinesightError(
      'ERR_MODEL_CONTRACT',
      `model input "${inputSpec.inputName}" is ${meta.type}, not float32`,
    );
  }
  const want = [1, inputSpec.channels, inputSpec.height, inputSpec.width];
  // An empty shape means the model does not declare one; symbolic dims accept anything.
  const shape = meta.shape ?? [];
  if (shape.length === 0) return;
  const fits =
    shape.length === 4 && shape.every((d, i) => typeof d !== 'number' || d === want[i] || d < 0);
  if (!fits) {
    throw new LinesightError(
      'ERR_MODEL_CONTRACT',
      `model input "${inputSpec.inputName}" has shape [${shape.join(', ')}], contract says [${want.join(', ')}]`,
    );
  }
}

/** Reads a single finite score from an output tensor; throws ERR_MODEL_OUTPUT. */
export function readScore(value: TensorLike | undefined, name: string): number {
  const { data } = floatTensor(value, name);
  if (data.length !== 1) {
    throw new LinesightError(
      'ERR_MODEL_OUTPUT',
      `score output "${name}" has ${data.length} values, expected 1`,
    );
  }
  const score = Number(data[0]);
  if (!Number.isFinite(score)) {
    throw new LinesightError('ERR_MODEL_OUTPUT', `score output "${name}" is ${score}`);
  }
  return score;
}

/** Reads a finite [1,1,h,w] anomaly map from an output tensor; throws ERR_MODEL_OUTPUT. */
export function readMap(value: TensorLike | undefined, name: string, scale?: number): AnomalyMap {
  const { data, dims } = floatTensor(value, name);
  const height = dims.at(-2);
  const width = dims.at(-1);
  if (height === undefined || width === undefined || height * width !== data.length) {
    throw new LinesightError(
      'ERR_MODEL_OUTPUT',
      `map output "${name}" has shape [${dims.join(', ')}], expected [1, 1, h, w]`,
    );
  }
  const map = data instanceof Float32Array ? data : Float32Array.from(data);
  for (let i = 0; i < map.length; i++) {
    if (!Number.isFinite(map[i])) {
      throw new LinesightError(
        'ERR_MODEL_OUTPUT',
        `map output "${name}" has a non-finite value at index ${i}`,
      );
    }
  }
  return { width, height, data: map, ...(scale !== undefined ? { scale } : {}) };
}

function floatTensor(
  value: TensorLike | undefined,
  name: string,
): { data: Float32Array | Float64Array; dims: readonly number[] } {
  if (value === undefined) {
    throw new LinesightError('ERR_MODEL_OUTPUT', `model produced no output "${name}"`);
  }
  const { data, dims, type } = value;
  if (!(data instanceof Float32Array) && !(data instanceof Float64Array)) {
    throw new LinesightError('ERR_MODEL_OUTPUT', `output "${name}" is ${type}, expected float32`);
  }
  return { data, dims };
}

/** The message of any thrown value. */
export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** The NCHW dims of a contract's input; throws ERR_MODEL_CONTRACT when `input` has the wrong length. */
export function checkInputLength(contract: ModelContract, input: Float32Array): number[] {
  const { channels, height, width } = contract.inputSpec;
  const dims = [1, channels, height, width];
  const expected = channels * height * width;
  if (input.length !== expected) {
    throw new LinesightError(
      'ERR_MODEL_CONTRACT',
      `input has ${input.length} values, the model needs ${expected} (${dims.join('x')})`,
    );
  }
  return dims;
}
