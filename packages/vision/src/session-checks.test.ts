import { describe, expect, it } from 'vitest';
import { isLinesightError } from '@linesight/protocol';
import { tinyContract } from '@linesight/testkit/onnx';
import type { ModelContract } from './model-contract.ts';
import {
  checkInputLength,
  checkSessionAgainstContract,
  errorMessage,
  readMap,
  readScore,
  type SessionShape,
  type TensorLike,
} from './session-checks.ts';

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    return isLinesightError(err) ? err.code : `not a LinesightError: ${String(err)}`;
  }
  return undefined;
}

// A grey 16x8 input named "image", outputs "score" and "map".
const contract: ModelContract = tinyContract(16, 8);

function session(
  shape: readonly (number | string)[] | undefined,
  overrides: Partial<SessionShape> = {},
  type = 'float32',
): SessionShape {
  return {
    inputNames: ['image'],
    outputNames: ['score', 'map'],
    inputMetadata: [
      { name: 'image', isTensor: true, type, ...(shape === undefined ? {} : { shape }) },
    ],
    ...overrides,
  };
}

function tensor(data: unknown, dims: readonly number[], type = 'float32'): TensorLike {
  return { type, dims, data };
}

describe('checkSessionAgainstContract', () => {
  it('accepts a session with the contract input, both outputs and the NCHW shape', () => {
    expect(contract.inputSpec.inputName).toBe('image');
    expect(contract.outputs).toEqual({ score: 'score', map: 'map' });
    expect(codeOf(() => checkSessionAgainstContract(session([1, 1, 8, 16]), contract))).toBe(
      undefined,
    );
  });

  it('refuses a session without the contract input or either contract output', () => {
    const cases: Partial<SessionShape>[] = [
      { inputNames: ['pixels'] },
      { inputNames: [] },
      { outputNames: ['map'] },
      { outputNames: ['score'] },
      { outputNames: [] },
    ];
    for (const overrides of cases) {
      expect(
        codeOf(() => checkSessionAgainstContract(session([1, 1, 8, 16], overrides), contract)),
        JSON.stringify(overrides),
      ).toBe('ERR_MODEL_CONTRACT');
    }
  });

  it('needs no map output when the contract names none', () => {
    const scoreOnly: ModelContract = { ...contract, outputs: { score: 'score' } };
    const s = session([1, 1, 8, 16], { outputNames: ['score'] });
    expect(codeOf(() => checkSessionAgainstContract(s, scoreOnly))).toBe(undefined);
  });

  it('refuses an input that is not float32', () => {
    for (const type of ['uint8', 'float16', 'float64']) {
      expect(
        codeOf(() => checkSessionAgainstContract(session([1, 1, 8, 16], {}, type), contract)),
        type,
      ).toBe('ERR_MODEL_CONTRACT');
    }
  });

  it('refuses a declared shape that differs from [1, channels, height, width] in any dim', () => {
    const wrong = [
      [2, 1, 8, 16],
      [1, 3, 8, 16],
      [1, 1, 16, 8],
      [1, 1, 8, 17],
      [0, 1, 8, 16],
      [1, 8, 16],
      [1, 1, 1, 8, 16],
    ];
    for (const shape of wrong) {
      expect(
        codeOf(() => checkSessionAgainstContract(session(shape), contract)),
        shape.join('x'),
      ).toBe('ERR_MODEL_CONTRACT');
    }
  });

  it('accepts symbolic and negative (dynamic) dims, and an undeclared shape', () => {
    const accepted = [['batch', 1, 8, 16], [-1, 1, 'h', 'w'], ['n', 'c', 'h', 'w'], [], undefined];
    for (const shape of accepted) {
      expect(
        codeOf(() => checkSessionAgainstContract(session(shape), contract)),
        String(shape),
      ).toBe(undefined);
    }
    // Symbolic dims do not excuse a wrong number of dims.
    expect(codeOf(() => checkSessionAgainstContract(session(['n', 'c', 'h']), contract))).toBe(
      'ERR_MODEL_CONTRACT',
    );
  });

  it('checks neither type nor shape when the input has no tensor metadata', () => {
    const nonTensor = session([9, 9], {
      inputMetadata: [{ name: 'image', isTensor: false, type: 'uint8', shape: [9, 9] }],
    });
    expect(codeOf(() => checkSessionAgainstContract(nonTensor, contract))).toBe(undefined);
    const otherInput = session([9, 9], {
      inputMetadata: [{ name: 'other', isTensor: true, type: 'uint8', shape: [9, 9] }],
    });
    expect(codeOf(() => checkSessionAgainstContract(otherInput, contract))).toBe(undefined);
  });

  it('checks the metadata of the contract input, not of another input', () => {
    const twoInputs = session(undefined, {
      inputNames: ['mask', 'image'],
      inputMetadata: [
        { name: 'mask', isTensor: true, type: 'float32', shape: [1, 1, 8, 16] },
        { name: 'image', isTensor: true, type: 'float32', shape: [1, 1, 4, 4] },
      ],
    });
    expect(codeOf(() => checkSessionAgainstContract(twoInputs, contract))).toBe(
      'ERR_MODEL_CONTRACT',
    );
  });
});

describe('readScore', () => {
  it('reads the one value of a float32 or float64 tensor', () => {
    expect(readScore(tensor(Float32Array.of(0.25), [1]), 'score')).toBe(0.25);
    expect(readScore(tensor(Float64Array.of(-3.5), [1, 1], 'float64'), 'score')).toBe(-3.5);
  });

  it('refuses a missing output, a non-float tensor, not exactly one value, or a non-finite score', () => {
    const bad: [string, TensorLike | undefined][] = [
      ['missing', undefined],
      ['int32', tensor(Int32Array.of(1), [1], 'int32')],
      ['array', tensor([1], [1])],
      ['empty', tensor(new Float32Array(0), [0])],
      ['two values', tensor(Float32Array.of(1, 2), [2])],
      ['NaN', tensor(Float32Array.of(Number.NaN), [1])],
      ['Infinity', tensor(Float32Array.of(Number.POSITIVE_INFINITY), [1])],
      ['-Infinity', tensor(Float64Array.of(Number.NEGATIVE_INFINITY), [1])],
    ];
    for (const [what, value] of bad)
      expect(
        codeOf(() => readScore(value, 'score')),
        what,
      ).toBe('ERR_MODEL_OUTPUT');
  });
});

describe('readMap', () => {
  it('reads a [1, 1, h, w] map as rows of cells, keeping a float32 buffer as is', () => {
    const data = Float32Array.from({ length: 6 }, (_, i) => i / 2);
    const map = readMap(tensor(data, [1, 1, 2, 3]), 'map');
    expect(map).toEqual({ width: 3, height: 2, data });
    expect(map.data).toBe(data);
  });

  it('converts a float64 map to float32', () => {
    const map = readMap(tensor(Float64Array.of(1.5, -2, 0.125, 4), [2, 2], 'float64'), 'map');
    expect(map.data).toBeInstanceOf(Float32Array);
    expect([...map.data]).toEqual([1.5, -2, 0.125, 4]);
    expect({ width: map.width, height: map.height }).toEqual({ width: 2, height: 2 });
  });

  it('refuses a missing or non-float map, dims that do not cover the data, and one dim', () => {
    const bad: [string, TensorLike | undefined][] = [
      ['missing', undefined],
      ['uint8', tensor(Uint8Array.of(1, 2, 3, 4), [1, 1, 2, 2], 'uint8')],
      ['too few values', tensor(new Float32Array(5), [1, 1, 2, 3])],
      ['too many values', tensor(new Float32Array(7), [1, 1, 2, 3])],
      ['one dim', tensor(new Float32Array(6), [6])],
      ['no dims', tensor(new Float32Array(1), [])],
    ];
    for (const [what, value] of bad)
      expect(
        codeOf(() => readMap(value, 'map')),
        what,
      ).toBe('ERR_MODEL_OUTPUT');
  });

  it('refuses a non-finite cell wherever it is', () => {
    for (const at of [0, 2, 5]) {
      for (const v of [Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY]) {
        const data = new Float32Array(6).fill(1);
        data[at] = v;
        expect(
          codeOf(() => readMap(tensor(data, [1, 1, 2, 3]), 'map')),
          `${v} at ${at}`,
        ).toBe('ERR_MODEL_OUTPUT');
      }
    }
  });
});

describe('checkInputLength', () => {
  it('gives the NCHW dims of an input of exactly channels x height x width values', () => {
    expect(checkInputLength(contract, new Float32Array(128))).toEqual([1, 1, 8, 16]);
    const rgb: ModelContract = {
      ...contract,
      inputSpec: { ...contract.inputSpec, channels: 3, mean: [0, 0, 0], std: [1, 1, 1] },
    };
    expect(checkInputLength(rgb, new Float32Array(384))).toEqual([1, 3, 8, 16]);
  });

  it('refuses one value more or less', () => {
    for (const n of [0, 127, 129, 384])
      expect(
        codeOf(() => checkInputLength(contract, new Float32Array(n))),
        String(n),
      ).toBe('ERR_MODEL_CONTRACT');
  });
});

describe('errorMessage', () => {
  it('gives the message of an Error and the string of anything else', () => {
    expect(errorMessage(new RangeError('out of range'))).toBe('out of range');
    expect(errorMessage('plain')).toBe('plain');
    expect(errorMessage(42)).toBe('42');
  });
});
