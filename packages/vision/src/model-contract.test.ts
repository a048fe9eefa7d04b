import { describe, expect, it } from 'vitest';
import { LinesightError, isLinesightError } from '@linesight/protocol';
import { tinyContract } from '@linesight/testkit/onnx';
import { parseModelContract, type ModelContract } from './model-contract.ts';

function failure(json: string): LinesightError {
  try {
    parseModelContract(json);
  } catch (err) {
    if (isLinesightError(err)) return err;
    throw new Error(`not a LinesightError: ${String(err)}`, { cause: err });
  }
  throw new Error(`parsed: ${json}`);
}

function withSpec(overrides: Partial<ModelContract['inputSpec']>): string {
  const c = tinyContract(16, 8, 3);
  return JSON.stringify({ ...c, inputSpec: { ...c.inputSpec, ...overrides } });
}

describe('parseModelContract', () => {
  it('gives back a valid contract, fields it does not know included', () => {
    const c = { ...tinyContract(16, 8, 3), threshold: 0.75, future: { field: 1 } };
    expect(parseModelContract(JSON.stringify(c))).toEqual(c);
  });

  it('refuses bytes that are not JSON, with the parse error as the cause', () => {
    const err = failure('{"schema":');
    expect(err.code).toBe('ERR_MODEL_CONTRACT');
    expect(err.message).toMatch(/not JSON/);
    expect(err.cause).toBeInstanceOf(SyntaxError);
  });

  it('refuses JSON that breaks the schema, with the validation error as the cause', () => {
    for (const json of [
      'null',
      '[]',
      JSON.stringify({ ...tinyContract(16, 8), schema: 'linesight.model/v2' }),
      JSON.stringify({ ...tinyContract(16, 8), threshold: 'high' }),
      withSpec({ width: 4 }),
    ]) {
      const err = failure(json);
      expect(err.code, json).toBe('ERR_MODEL_CONTRACT');
      expect(err.message, json).toMatch(/^model contract is invalid: /);
      expect(err.cause, json).toBeDefined();
    }
  });

  it('needs one mean and one std per channel, each on its own', () => {
    for (const [what, json] of [
      ['short mean', withSpec({ mean: [0, 0] })],
      ['short std', withSpec({ std: [1, 1] })],
      ['grey mean on RGB', withSpec({ mean: [0], std: [1, 1, 1] })],
      ['grey std on RGB', withSpec({ mean: [0, 0, 0], std: [1] })],
    ] as const) {
      const err = failure(json);
      expect(err.code, what).toBe('ERR_MODEL_CONTRACT');
      // Its own message, not wrapped as a schema failure.
      expect(err.message, what).toBe('model contract: mean and std need one value per channel');
    }
    expect(
      parseModelContract(withSpec({ mean: [0.4, 0.5, 0.6], std: [1, 2, 3] })).inputSpec.std,
    ).toEqual([1, 2, 3]);
  });
});
