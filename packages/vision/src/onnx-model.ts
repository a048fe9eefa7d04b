import * as ort from 'onnxruntime-node';
import { LinesightError } from '@linesight/protocol';
import type { ModelContract } from './model-contract.ts';
import { readModelContract } from './onnx-contract.ts';
import { preprocessImage } from './preprocess.ts';

/** Options for loading an ONNX model. */
export interface OnnxModelOptions {
  /** Threads one inference may use; 1 (the default) keeps latency steady beside other work. */
  intraOpNumThreads?: number;
}

/** A per-cell anomaly map, row-major, `height` rows of `width` cells. */
export interface AnomalyMap {
  width: number;
  height: number;
  data: Float32Array;
}

/** What a model says about one input: a score and, if the model has one, an anomaly map. */
export interface ModelOutput {
  score: number;
  map?: AnomalyMap;
}

/** A model output with how long preprocessing and inference took. */
export interface ScoredImage extends ModelOutput {
  preprocessMs: number;
  inferenceMs: number;
}

/**
 * An ONNX Runtime session bound to the Linesight contract inside the model:
 * it knows its input spec, output names and threshold, and checks every output.
 */
export class OnnxModel {
  /** The contract read from the model's metadata. */
  readonly contract: ModelContract;
  readonly #session: ort.InferenceSession;
  readonly #inputDims: readonly number[];
  readonly #fetches: string[];
  readonly #inFlight = new Set<Promise<unknown>>();
  #closing: Promise<void> | undefined;

  private constructor(contract: ModelContract, session: ort.InferenceSession) {
    this.contract = contract;
    this.#session = session;
    const { channels, height, width } = contract.inputSpec;
    this.#inputDims = [1, channels, height, width];
    this.#fetches =
      contract.outputs.map === undefined
        ? [contract.outputs.score]
        : [contract.outputs.score, contract.outputs.map];
  }

  /** Reads the contract, creates a session and checks that the graph matches the contract. */
  static async load(onnxBytes: Uint8Array, options: OnnxModelOptions = {}): Promise<OnnxModel> {
    const contract = readModelContract(onnxBytes);
    let session: ort.InferenceSession;
    try {
      session = await ort.InferenceSession.create(onnxBytes, {
        intraOpNumThreads: options.intraOpNumThreads ?? 1,
        interOpNumThreads: 1,
        graphOptimizationLevel: 'all',
        executionMode: 'sequential',
      });
    } catch (cause) {
      throw new LinesightError(
        'ERR_MODEL_LOAD',
        `ONNX Runtime cannot load the model: ${errorMessage(cause)}`,
        { cause },
      );
    }
    try {
      checkSessionAgainstContract(session, contract);
    } catch (err) {
      await session.release().catch(() => undefined);
      throw err;
    }
    return new OnnxModel(contract, session);
  }

  /** Runs the model on one NCHW float32 input laid out as the contract's input spec says. */
  async run(input: Float32Array): Promise<ModelOutput> {
    if (this.#closing !== undefined) throw new LinesightError('ERR_MODEL_LOAD', 'model is closed');
    const expected = this.#inputDims.reduce((a, b) => a * b, 1);
    if (input.length !== expected) {
      throw new LinesightError(
        'ERR_MODEL_CONTRACT',
        `input has ${input.length} values, the model needs ${expected} (${this.#inputDims.join('x')})`,
      );
    }
    const running = this.#runSession(input);
    this.#inFlight.add(running);
    try {
      return await running;
    } finally {
      this.#inFlight.delete(running);
    }
  }

  /** Preprocesses an encoded image as the contract says and scores it, timing both steps. */
  async scoreImage(image: Uint8Array): Promise<ScoredImage> {
    const t0 = performance.now();
    const input = await preprocessImage(image, this.contract.inputSpec);
    const t1 = performance.now();
    const output = await this.run(input);
    const t2 = performance.now();
    return { ...output, preprocessMs: t1 - t0, inferenceMs: t2 - t1 };
  }

  /** Waits for in-flight runs, then releases the session; safe to call more than once. */
  close(): Promise<void> {
    this.#closing ??= this.#release();
    return this.#closing;
  }

  async #release(): Promise<void> {
    await Promise.allSettled([...this.#inFlight]);
    await this.#session.release();
  }

  async #runSession(input: Float32Array): Promise<ModelOutput> {
    const { inputSpec, outputs } = this.contract;
    let results: ort.InferenceSession.ReturnType;
    try {
      const tensor = new ort.Tensor('float32', input, this.#inputDims);
      results = await this.#session.run({ [inputSpec.inputName]: tensor }, this.#fetches);
    } catch (cause) {
      throw new LinesightError('ERR_MODEL_OUTPUT', `inference failed: ${errorMessage(cause)}`, {
        cause,
      });
    }
    const score = readScore(results[outputs.score], outputs.score);
    if (outputs.map === undefined) return { score };
    return { score, map: readMap(results[outputs.map], outputs.map) };
  }
}

function checkSessionAgainstContract(session: ort.InferenceSession, contract: ModelContract): void {
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
  if (meta.shape.length === 0) return;
  const fits =
    meta.shape.length === 4 &&
    meta.shape.every((d, i) => typeof d !== 'number' || d === want[i] || d < 0);
  if (!fits) {
    throw new LinesightError(
      'ERR_MODEL_CONTRACT',
      `model input "${inputSpec.inputName}" has shape [${meta.shape.join(', ')}], contract says [${want.join(', ')}]`,
    );
  }
}

function readScore(value: ort.OnnxValue | undefined, name: string): number {
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

function readMap(value: ort.OnnxValue | undefined, name: string): AnomalyMap {
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
  return { width, height, data: map };
}

function floatTensor(
  value: ort.OnnxValue | undefined,
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

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
